import type { Metafile } from 'esbuild';
import { planSharedChunk, SMALL_CHUNK_BYTES } from '../../scripts/bundle-shared-chunk.js';

/** An import; `external` is a static import of a package the bundle leaves out. */
type Edge = [path: string, kind?: 'import-statement' | 'dynamic-import' | 'external'];

/** A metafile as esbuild writes one: each input's imports, each output's entry point, inputs and size. */
function metafile(inputs: Record<string, { imports: Edge[]; format?: 'esm' | 'cjs' }>, outputs: Record<string, { entryPoint?: string; inputs: string[]; bytes: number }>): Metafile {
  return {
    inputs: Object.fromEntries(
      Object.entries(inputs).map(([path, { imports, format = 'esm' }]) => [path, { bytes: 1, format, imports: imports.map(([to, kind = 'import-statement']) => (kind === 'external' ? { path: to, kind: 'import-statement', external: true, original: to } : { path: to, kind, original: to })) }]),
    ),
    outputs: Object.fromEntries(
      Object.entries(outputs).map(([path, { entryPoint, inputs: held, bytes }]) => [
        path,
        { bytes, entryPoint, imports: [], exports: [], inputs: Object.fromEntries(held.map((input) => [input, { bytesInOutput: 1 }])) },
      ]),
    ),
  } as unknown as Metafile;
}

const small = SMALL_CHUNK_BYTES - 1;

test('gathers the modules of the small shared chunks, and names every entry that reaches one', () => {
  const meta = metafile(
    {
      'src/main.ts': { imports: [['src/cli.ts', 'dynamic-import']] },
      'src/cli.ts': { imports: [['src/lib/a.ts'], ['src/commands/run.ts', 'dynamic-import'], ['src/commands/check.ts', 'dynamic-import']] },
      'src/commands/run.ts': { imports: [['src/lib/a.ts'], ['src/lib/b.ts'], ['lazy-builtin:fs']] },
      'src/commands/check.ts': { imports: [['src/lib/b.ts'], ['src/lib/big.ts']] },
      'src/lib/a.ts': { imports: [] },
      'src/lib/b.ts': { imports: [['lazy-builtin:fs']] },
      'src/lib/big.ts': { imports: [] },
      'lazy-builtin:fs': { imports: [], format: 'cjs' },
    },
    {
      'preemptd.mjs': { entryPoint: 'src/main.ts', inputs: ['src/main.ts'], bytes: 300 },
      'chunk-CLI.mjs': { entryPoint: 'src/cli.ts', inputs: ['src/cli.ts'], bytes: 300 },
      'chunk-RUN.mjs': { entryPoint: 'src/commands/run.ts', inputs: ['src/commands/run.ts'], bytes: 300 },
      'chunk-CHECK.mjs': { entryPoint: 'src/commands/check.ts', inputs: ['src/commands/check.ts'], bytes: 300 },
      'chunk-A.mjs': { inputs: ['src/lib/a.ts'], bytes: small },
      'chunk-B.mjs': { inputs: ['src/lib/b.ts'], bytes: small },
      'chunk-FS.mjs': { inputs: ['lazy-builtin:fs'], bytes: small },
      'chunk-BIG.mjs': { inputs: ['src/lib/big.ts'], bytes: SMALL_CHUNK_BYTES },
    },
  );
  expect(planSharedChunk(meta, ['src/main.ts'])).toEqual({
    modules: ['lazy-builtin:fs', 'src/lib/a.ts', 'src/lib/b.ts'],
    entries: ['src/cli.ts', 'src/commands/check.ts', 'src/commands/run.ts'],
  });
});

test('leaves out a module that imports one it cannot take, then what imports that module, and one that imports an external package', () => {
  const meta = metafile(
    {
      'src/cli.ts': { imports: [['src/lib/outer.ts'], ['src/lib/alone.ts'], ['src/lib/native.ts'], ['src/commands/run.ts', 'dynamic-import']] },
      'src/commands/run.ts': { imports: [['src/lib/outer.ts'], ['src/lib/alone.ts'], ['src/lib/heavy.ts']] },
      'src/lib/outer.ts': { imports: [['src/lib/inner.ts']] },
      'src/lib/inner.ts': { imports: [['src/lib/heavy.ts']] },
      'src/lib/heavy.ts': { imports: [] },
      'src/lib/alone.ts': { imports: [] },
      'src/lib/native.ts': { imports: [['@node-rs/crc32', 'external']] },
    },
    {
      'chunk-CLI.mjs': { entryPoint: 'src/cli.ts', inputs: ['src/cli.ts'], bytes: 300 },
      'chunk-RUN.mjs': { entryPoint: 'src/commands/run.ts', inputs: ['src/commands/run.ts', 'src/lib/heavy.ts'], bytes: 90_000 },
      'chunk-SHARED.mjs': { inputs: ['src/lib/outer.ts', 'src/lib/inner.ts', 'src/lib/alone.ts'], bytes: small },
      'chunk-NATIVE.mjs': { inputs: ['src/lib/native.ts'], bytes: small },
    },
  );
  // heavy.ts is in run's own chunk: gathering inner.ts would pull it into every entry; native.ts imports a package left external.
  expect(planSharedChunk(meta, []).modules).toEqual(['src/lib/alone.ts']);
});

test('takes no module that a kept-out entry, or an entry that is CommonJS, reaches; and no package', () => {
  const meta = metafile(
    {
      'src/main.ts': { imports: [['src/lib/early.ts'], ['src/cli.ts', 'dynamic-import']] },
      'src/cli.ts': { imports: [['src/lib/early.ts'], ['src/lib/late.ts'], ['node_modules/pkg/index.js'], ['lazy-builtin:http', 'dynamic-import']] },
      'lazy-builtin:http': { imports: [['lazy-builtin:net']], format: 'cjs' },
      'src/snapshots/read-worker.ts': { imports: [['src/lib/late.ts'], ['lazy-builtin:net']] },
      'src/lib/early.ts': { imports: [] },
      'src/lib/late.ts': { imports: [] },
      'lazy-builtin:net': { imports: [], format: 'cjs' },
      'node_modules/pkg/index.js': { imports: [] },
    },
    {
      'preemptd.mjs': { entryPoint: 'src/main.ts', inputs: ['src/main.ts'], bytes: 300 },
      'read-worker.mjs': { entryPoint: 'src/snapshots/read-worker.ts', inputs: ['src/snapshots/read-worker.ts'], bytes: 300 },
      'chunk-CLI.mjs': { entryPoint: 'src/cli.ts', inputs: ['src/cli.ts'], bytes: 300 },
      'chunk-HTTP.mjs': { entryPoint: 'lazy-builtin:http', inputs: ['lazy-builtin:http'], bytes: 300 },
      'chunk-EARLY.mjs': { inputs: ['src/lib/early.ts'], bytes: small },
      'chunk-LATE.mjs': { inputs: ['src/lib/late.ts'], bytes: small },
      'chunk-NET.mjs': { inputs: ['lazy-builtin:net'], bytes: small },
      'chunk-PKG.mjs': { inputs: ['node_modules/pkg/index.js'], bytes: small },
    },
  );
  expect(planSharedChunk(meta, ['src/main.ts'])).toEqual({ modules: ['src/lib/late.ts'], entries: ['src/cli.ts', 'src/snapshots/read-worker.ts'] });
  expect(planSharedChunk(meta, ['src/main.ts', 'src/snapshots/read-worker.ts'])).toEqual({ modules: [], entries: [] });
});
