import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/examples.js';

// The built module (dist/), as the agent runs it: Node strips TypeScript with WebAssembly, so
// a Node without WebAssembly cannot load the sources at all.
test('content-defined chunking in a Node without WebAssembly fails with a clear error, not a crash', () => {
  const chunker = pathToFileURL(join(ROOT, 'dist/src/snapshots/chunker.js')).href;
  const script = `const { ContentChunker, SNAPSHOT_CHUNK_SIZES } = await import(${JSON.stringify(chunker)});
    try { new ContentChunker(SNAPSHOT_CHUNK_SIZES).push(new Uint8Array(10), () => {}); } catch (error) { console.log(error.message); }`;
  for (const flag of ['--jitless', '--lite-mode']) {
    const child = spawnSync(process.execPath, [flag, '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stdout.trim()).toBe('content-defined chunking needs WebAssembly, which this Node runs without (started with --jitless or --lite-mode?)');
  }
});
