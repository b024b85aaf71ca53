import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `npm run bench -- <name> [args...]` runs bench/<name>.bench.ts (compiled to dist/bench). */
const benchDir = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.bench.js'))
  .map((file) => file.slice(0, -'.bench.js'.length))
  .sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`${name ? `unknown benchmark "${name}"` : 'no benchmark named'}; expected one of: ${available.join(', ')}\n`);
  process.exit(64);
}
const bench = (await import(`./${name}.bench.js`)) as { default: (args: string[]) => Promise<void> };
await bench.default(args);
