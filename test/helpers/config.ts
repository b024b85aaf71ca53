import * as load from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { STEP_TYPES } from '../../src/steps/registry.js';

type WithStepTypes<T extends { stepTypes: unknown }> = Omit<T, 'stepTypes'> & Partial<Pick<T, 'stepTypes'>>;

/** compileConfig with every real step type unless a test hands its own, as the commands do. */
export function compileConfig(raw: unknown, options: WithStepTypes<load.CompileOptions> = {}): Config {
  return load.compileConfig(raw, { stepTypes: STEP_TYPES, ...options });
}

/** loadConfig with every real step type unless a test hands its own. */
export function loadConfig(options: WithStepTypes<load.LoadOptions> = {}): Promise<Config> {
  return load.loadConfig({ stepTypes: STEP_TYPES, ...options });
}
