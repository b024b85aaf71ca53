import type { NoticeKind, ProviderName } from '../notice/notice.js';

/** What each notice kind a simulated cloud can show looks like there. */
export type SimulatedKinds = Partial<Record<NoticeKind, string>>;

/**
 * What each simulated cloud can show, and what it shows when no kind is named (its spot
 * interruption). Apart from the clouds themselves so that `--help` (every command's, through
 * the CLI's declarations) reads it without loading the simulator and its node:crypto.
 */
export const SIMULATED_KINDS: Partial<Record<ProviderName, { kinds: SimulatedKinds; defaultKind: NoticeKind }>> = {
  aws: {
    defaultKind: 'terminate',
    kinds: {
      terminate: 'spot/instance-action "terminate" and spot/termination-time',
      stop: 'spot/instance-action "stop" and spot/termination-time',
      hibernate: 'spot/instance-action "hibernate" and spot/termination-time',
      rebalance: 'events/recommendations/rebalance',
      maintenance: 'events/maintenance/scheduled: an active system-reboot',
    },
  },
  gcp: {
    defaultKind: 'preempt',
    kinds: {
      preempt: 'instance/preempted turns TRUE',
      maintenance: 'instance/maintenance-event MIGRATE_ON_HOST_MAINTENANCE',
    },
  },
  azure: {
    defaultKind: 'preempt',
    kinds: {
      preempt: 'Scheduled Events: a Preempt event for this VM',
      terminate: 'Scheduled Events: a Terminate event for this VM',
      reboot: 'Scheduled Events: a Reboot event for this VM',
      redeploy: 'Scheduled Events: a Redeploy event for this VM',
      freeze: 'Scheduled Events: a Freeze event for this VM',
    },
  },
  alibaba: { defaultKind: 'terminate', kinds: { terminate: 'instance/spot/termination-time' } },
  tencent: { defaultKind: 'terminate', kinds: { terminate: 'spot/termination-time (UTC+8, no zone)' } },
};

/** The kinds of one simulated cloud (each cloud refuses others with cannotShow). */
export function kindsOf(provider: ProviderName): SimulatedKinds {
  return SIMULATED_KINDS[provider]?.kinds ?? {};
}
