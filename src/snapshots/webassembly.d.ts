/**
 * The part of the WebAssembly global chunker.ts uses. Node has all of it; TypeScript declares
 * it only in its DOM libraries, which this project does not load (lib is ES2023 alone).
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    /** Adds `pages` pages of 64 KiB; the old `buffer` is detached. */
    grow(pages: number): number;
  }
}
