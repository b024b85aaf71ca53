import { MetadataError } from '../../lib/errors.js';
import { showValue } from '../../lib/format.js';

export const LIFECYCLE_PATH = 'autoscaling/target-lifecycle-state';

/** A state name (`InService`, `Terminated`, `Warmed:Hibernated`...); anything else is not a state. */
const STATE_NAME = /^[A-Za-z]+(?::[A-Za-z]+)*$/;
/** Target states in which the group is terminating this instance (a warm pool's too). */
const TERMINATING_STATES: readonly string[] = ['Terminated', 'Warmed:Terminated'];

/** The item's body as a state name; throws ERR_METADATA_BODY on anything else. */
export function parseLifecycleState(body: string): string {
  const state = body.trim();
  if (!STATE_NAME.test(state)) {
    throw new MetadataError('ERR_METADATA_BODY', `${LIFECYCLE_PATH}: expected a lifecycle state such as InService or Terminated, got ${showValue(body)}`, 200);
  }
  return state;
}

export type LifecycleChange =
  | { type: 'terminating'; state: string; identity: string }
  | { type: 'withdrawn'; identity: string; state: string };

/**
 * Follows `autoscaling/target-lifecycle-state` from read to read. `Terminated` (or
 * `Warmed:Terminated`) starts a termination; any other state after it (InService again,
 * Standby, Detached) withdraws it. A 404 says nothing (the instance is in no Auto Scaling
 * group). Each termination has its own identity: the boot, the item and how many came
 * before it in this process, so a termination withdrawn and started again is a new notice.
 */
export class LifecycleTracker {
  private terminations = 0;
  private active: string | undefined;
  /** False after a 404 (no Auto Scaling group): the item is then read less often. */
  inGroup = true;

  constructor(private readonly boot: string) {}

  read(body: string | null): LifecycleChange | undefined {
    this.inGroup = body !== null;
    if (body === null) return undefined;
    const state = parseLifecycleState(body);
    const terminating = TERMINATING_STATES.includes(state);
    if (terminating && this.active === undefined) {
      const episode = this.terminations === 0 ? '' : `\0${this.terminations}`;
      this.terminations += 1;
      this.active = `${this.boot}\0${LIFECYCLE_PATH}${episode}`;
      return { type: 'terminating', state, identity: this.active };
    }
    if (!terminating && this.active !== undefined) {
      const identity = this.active;
      this.active = undefined;
      return { type: 'withdrawn', identity, state };
    }
    return undefined;
  }
}
