import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jsonBytes } from '../../src/lib/json-bytes.js';

/**
 * keepYoungGenerationSmall (src/lib/young-generation.ts), called first by the CLI, keeps V8's
 * young generation from growing while a process allocates fast. Each case runs in a Node of its
 * own (V8 flags are per process); without the call the same allocations grow it.
 */
const module = fileURLToPath(new URL('../../src/lib/young-generation.ts', import.meta.url));

function youngGenerationAfterAllocating(keepSmall: boolean): number {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { keepYoungGenerationSmall } = await import(${JSON.stringify(module)});
    if (${keepSmall}) keepYoungGenerationSmall();
    let kept = [];
    for (let i = 0; i < 3e6; i += 1) { kept.push({ i, text: 'x' + i }); if (kept.length > 20000) kept = []; }
    console.log(getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').physical_space_size);
  `;
  // Types stripped by Node itself, as the reading threads run under the test runner.
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }).trim());
}

test('the young generation stays at its starting size once the CLI has asked, and grows without it', () => {
  const small = youngGenerationAfterAllocating(true);
  const grown = youngGenerationAfterAllocating(false);
  // Alone it stays at 1.4-3.1 MB; once, in a full CI run beside the other suites, it reached
  // 8.1 MB. Without the call the same allocations take it to 48-64 MB.
  expect(small).toBeLessThanOrEqual(16 * 1024 * 1024);
  expect(grown).toBeGreaterThan(3 * small);
});

test('jsonBytes writes the JSON and its trailer as UTF-8, multi-byte characters included', () => {
  const value = { path: 'ckpt/épreuve-✓.pt', chunks: [['ab', 1, 'cd', 0]] };
  const bytes = jsonBytes(value, '\n');
  expect(bytes.toString('utf8')).toBe(`${JSON.stringify(value)}\n`);
  expect(bytes.length).toBe(Buffer.byteLength(`${JSON.stringify(value)}\n`));
  expect(jsonBytes([1, 2]).toString()).toBe('[1,2]');
});
