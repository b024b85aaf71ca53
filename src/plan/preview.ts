import { errorMessage } from '../lib/errors.js';
import type { HostFacts } from '../lib/host.js';
import type { StepTypeLookup } from '../steps/types.js';
import type { Plan } from './build.js';

/** What one step would act on now (StepType.preview), or why it could not look. */
export interface StepPreview {
  step: string;
  lines: string[];
  /** Set when the step could not look (an API server down): only its description is known. */
  error?: string;
}

/** A dry run waits this long for a step to look: a slow server is a failed look, not a hang. */
const PREVIEW_TIMEOUT_MS = 5_000;

/** The previews of the plan's steps that have one, in plan order; reading only, never acting. */
export async function previewPlan(plan: Plan, lookup: StepTypeLookup, host: HostFacts): Promise<StepPreview[]> {
  const previews = await Promise.all(
    plan.steps.map(async (step): Promise<StepPreview | undefined> => {
      const type = lookup(step.type);
      if (!type?.preview) return undefined;
      try {
        const lines = await type.preview(step.options, { signal: AbortSignal.timeout(PREVIEW_TIMEOUT_MS), host });
        return lines.length === 0 ? undefined : { step: step.name, lines };
      } catch (error) {
        return { step: step.name, lines: [], error: errorMessage(error) };
      }
    }),
  );
  return previews.filter((preview) => preview !== undefined);
}
