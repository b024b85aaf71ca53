import { isDeepStrictEqual } from 'node:util';
import { compileSettings, isMapping, settingPaths, settingsOf, TAKES_EFFECT, type TakesEffect } from './schema.js';
import type { Config } from './types.js';

export interface ConfigChanges {
  /** Changed settings that apply from the next notice on (dotted config-file paths). */
  applied: string[];
  /** Changed settings that keep their running value until the agent restarts. */
  restartNeeded: string[];
}

/** The value at a dotted path of a mapping; undefined where the path leaves it. */
function valueAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (isMapping(node) ? node[key] : undefined), value);
}

/** When a change to the setting at `path` takes effect, as TAKES_EFFECT says for it or its section. */
function effectOf(path: readonly string[]): TakesEffect {
  let node: unknown = TAKES_EFFECT;
  for (const key of path) {
    node = isMapping(node) ? node[key] : undefined;
    if (node === 'reload' || node === 'restart') return node;
  }
  throw new Error(`no TAKES_EFFECT entry for the setting ${path.join('.')}`);
}

/** Which settings differ between two compiled configs, by config-file path, split by when they take effect. */
export function configChanges(running: Config, next: Config): ConfigChanges {
  const before = settingsOf(running);
  const after = settingsOf(next);
  const changes: ConfigChanges = { applied: [], restartNeeded: [] };
  for (const path of [...settingPaths(), ['sync'], ['steps']]) {
    // Deep equality, not JSON: step options hold RegExps and the like.
    if (isDeepStrictEqual(valueAt(before, path), valueAt(after, path))) continue;
    (effectOf(path) === 'restart' ? changes.restartNeeded : changes.applied).push(path.join('.'));
  }
  return changes;
}

/** A section classified key by key rather than whole. */
function isSplit<Keys>(effect: TakesEffect | Keys): effect is Keys {
  return typeof effect === 'object';
}

type Effects<T> = { readonly [K in keyof T]: TakesEffect | Effects<T[K]> };

/** `next`, but every value `effects` marks `restart` taken from `running`. */
function withRunning<T>(effects: Effects<T>, running: T, next: T): T {
  let kept = next;
  for (const key in effects) {
    const effect = effects[key];
    if (isSplit<Effects<T[typeof key]>>(effect)) kept = { ...kept, [key]: withRunning(effect, running[key], next[key]) };
    else if (effect === 'restart') kept = { ...kept, [key]: running[key] };
  }
  return kept;
}

/** The config a reload puts into effect: `next`, with the settings read only at start still at their running values. */
export function keepRestartSettings(running: Config, next: Config): Config {
  return { file: next.file, ...compileSettings(withRunning(TAKES_EFFECT, settingsOf(running), settingsOf(next))) };
}
