import { configJsonSchema } from '../config/json-schema.js';
import { STEP_TYPES } from '../steps/registry.js';
import { cliSpec } from './cli-spec.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { manPage } from './man-page.js';
import { programHelpModule } from './program-help.js';

/**
 * Every file generated from the code, by path in the repository: committed, shipped in the
 * npm package and the .deb, rewritten by `npm run generate` (scripts/generate.ts) and held
 * to this by test/unit/generated.test.ts.
 */
export function generatedFiles(): Record<string, string> {
  const cli = cliSpec();
  return {
    'schema/preemptd.schema.json': `${JSON.stringify(configJsonSchema(STEP_TYPES), null, 2)}\n`,
    'packaging/completion/preemptd.bash': bashCompletion(cli),
    'packaging/completion/_preemptd': zshCompletion(cli),
    'packaging/man/preemptd.1': manPage(cli),
    'src/commands/program-help-text.ts': programHelpModule(),
  };
}
