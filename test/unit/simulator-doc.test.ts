import { readFileSync } from 'node:fs';
import { SIMULATED_CLOUDS } from '../../src/simulator/clouds.js';

const DOC = readFileSync(new URL('../../docs/simulator.md', import.meta.url), 'utf8');

test('docs/simulator.md lists exactly the kinds each simulated cloud declares, with its default', () => {
  const rows = [...DOC.matchAll(/^\| (\w+) \| `(\w+)`( \(default\))? \|/gm)].map(([, provider, kind, isDefault]) => ({ provider, kind, isDefault: Boolean(isDefault) }));
  const declared = Object.entries(SIMULATED_CLOUDS).flatMap(([provider, entry]) =>
    Object.keys(entry.kinds).map((kind) => ({ provider, kind, isDefault: kind === entry.defaultKind })),
  );
  expect(rows).toEqual(declared);
});
