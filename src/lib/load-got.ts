/**
 * got, imported on first use. Imported at start-up it was one of the largest modules on the
 * way to READY=1: without it there, the startup-ready bench (runs interleaved with the
 * previous build) went from p50 639-640 to 580-582 ms, CPU to READY=1 from 770-790 to 710 ms. The steps that send HTTP load it ahead of the first notice
 * (StepType.preload, called after the first metadata read), so the notice window does not pay.
 */
let loading: Promise<typeof import('got')> | undefined;

export function loadGot(): Promise<typeof import('got')> {
  loading ??= import('got');
  return loading;
}

/** StepType.preload of the steps that send HTTP. */
export async function preloadGot(): Promise<void> {
  await loadGot();
}
