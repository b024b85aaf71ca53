import type { RE2JS } from 're2js';
import { loadRe2js } from './on-demand.js';

/**
 * A regular expression matched in linear time (RE2). Patterns run against text anyone may
 * shape (command lines any local user sets, bodies a service sends): a backtracking engine
 * would let `^(a+)+$` on a long `aaaa…!` hold the event loop for minutes, freezing timers,
 * deadlines and /healthz. Two patterns of the same source are deeply equal (config reloads
 * compare step options that way): the compiled program is a private field.
 */
export class Pattern {
  readonly #compiled: RE2JS;

  /** Throws an Error whose message says what is wrong with `source`. */
  constructor(readonly source: string) {
    this.#compiled = loadRe2js().RE2JS.compile(source);
  }

  /** Whether the pattern matches anywhere in `text` (unanchored, like RegExp.test). */
  test(text: string): boolean {
    return this.#compiled.test(text);
  }
}

/** What validation messages tell users about the accepted syntax. */
export const PATTERN_SYNTAX = 'RE2 syntax (as in Go): no backreferences (\\1) and no lookaround ((?=, (?!, (?<=)';
