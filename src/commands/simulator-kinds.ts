import type { NoticeKind } from '../notice/notice.js';
import { SIMULATED_KINDS } from '../simulator/kinds.js';

/** Every kind some simulated cloud can show: the choices of `simulator --kind`. */
export const SIMULATOR_KIND_CHOICES: NoticeKind[] = [
  ...new Set(Object.values(SIMULATED_KINDS).flatMap((entry) => Object.keys(entry.kinds) as NoticeKind[])),
];

/** `simulator --help`'s table of what each provider can show, read from each cloud's own table. */
export function simulatorKindsHelp(): string {
  const lines = ['Kinds each provider can show (--kind; * = the default):'];
  for (const [provider, entry] of Object.entries(SIMULATED_KINDS)) {
    lines.push(`  ${provider}:`);
    for (const [kind, shows] of Object.entries(entry.kinds)) {
      lines.push(`    ${`${kind}${kind === entry.defaultKind ? '*' : ''}`.padEnd(13)}${shows}`);
    }
  }
  lines.push('Control API: POST /_simulator/trigger, /_simulator/clear, /_simulator/faults (docs/simulator.md).');
  return lines.join('\n');
}
