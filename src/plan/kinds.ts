import type { StepConfig } from '../config/types.js';
import { isAdvisory, NOTICE_KINDS, type Notice, type NoticeKind } from '../notice/notice.js';
import type { StepTypeLookup } from '../steps/types.js';

/**
 * Kinds a step without `on:` does not run for: it must list them. An Azure Freeze pauses
 * the VM for a few seconds; draining services or stopping workloads for that would do far
 * more harm than the pause (docs/providers.md).
 */
export const OPT_IN_KINDS: readonly NoticeKind[] = ['freeze'];

type KindFilter = Pick<StepConfig, 'on' | 'type' | 'options'>;

/**
 * Why a step does not run for this notice, or undefined when it runs. `on:` decides when
 * given; without it a step runs for every kind but the opt-in ones, and a destructive step
 * (StepType.destructive, asked with the step's options; an unknown type counts as one) sits out advisory notices, which
 * leave the VM running.
 */
export function skipReason(step: KindFilter, notice: Pick<Notice, 'kind' | 'advisory'>, lookup: StepTypeLookup): string | undefined {
  const { kind } = notice;
  if (step.on !== null) return step.on.includes(kind) ? undefined : `its on: does not list ${kind}`;
  if (OPT_IN_KINDS.includes(kind)) return `${kind} runs only the steps whose on: lists it`;
  if (isAdvisory(notice) && isDestructive(step, lookup)) {
    return `the ${kind} notice is advisory (the VM keeps running): a ${step.type} step runs for it only when its on: lists ${kind}`;
  }
  return undefined;
}

/** What the step type says of these options (StepType.destructive); an unknown type counts as destructive. */
function isDestructive(step: Pick<StepConfig, 'type' | 'options'>, lookup: StepTypeLookup): boolean {
  const type = lookup(step.type);
  if (!type) return true;
  return typeof type.destructive === 'function' ? type.destructive(step.options) : type.destructive;
}

interface NoticeVariant {
  kind: NoticeKind;
  advisory: boolean;
  label: string;
}

/** Every notice a step can meet: each kind, and maintenance both ending the VM and not. */
const NOTICE_VARIANTS: readonly NoticeVariant[] = NOTICE_KINDS.flatMap((kind): NoticeVariant[] =>
  kind === 'maintenance' ? [{ kind, advisory: false, label: kind }, { kind, advisory: true, label: 'advisory maintenance' }] : [{ kind, advisory: false, label: kind }],
);

export interface StepKinds {
  /** Notices the step runs for ("advisory maintenance" is a maintenance that leaves the VM running). */
  runsOn: string[];
  notOn: string[];
}

/** Which notices a step runs for, for `check` and `simulate --dry-run`. */
export function stepKinds(step: KindFilter, lookup: StepTypeLookup): StepKinds {
  const runs = NOTICE_VARIANTS.filter((variant) => skipReason(step, variant, lookup) === undefined);
  const labels = (variants: readonly NoticeVariant[]) => {
    const both = variants.filter((variant) => variant.kind === 'maintenance').length === 2;
    return variants.filter((variant) => !(both && variant.advisory)).map((variant) => (both ? variant.kind : variant.label));
  };
  return { runsOn: labels(runs), notOn: labels(NOTICE_VARIANTS.filter((variant) => !runs.includes(variant))) };
}

/** One phrase: `every kind but rebalance, freeze`, or the list of kinds it runs on. */
export function describeStepKinds({ runsOn, notOn }: StepKinds): string {
  if (notOn.length === 0) return 'every kind';
  return runsOn.length > notOn.length ? `every kind but ${notOn.join(', ')}` : runsOn.join(', ');
}
