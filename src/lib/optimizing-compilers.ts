import { setFlagsFromString } from 'node:v8';

/**
 * The built-in modules `run` loads before READY=1 that Node had not loaded yet. V8 accepts a
 * compiled code cache only under the flags it was made with, so once the flags below change,
 * Node compiles each built-in loaded later from its source: READY=1 came 14 ms later (p50 of
 * 30 starts, 162 against 148 ms). Loaded first, they keep Node's cache.
 */
const BUILTINS_BEFORE_READY = ['node:child_process', 'node:cluster', 'node:dgram', 'node:dns', 'node:fs/promises', 'node:http', 'node:net', 'node:perf_hooks', 'node:worker_threads'];

/**
 * Leaves V8's optimizing compilers (Maglev, TurboFan) off for the rest of the process: code
 * runs in the interpreter and the baseline compiler only. An agent between notices runs
 * little JavaScript, but once the compilers run, their machine code (in the node binary) stays
 * resident: side by side for 4 minutes at a 1 s poll, the bundled agent held 74.9 MB with them
 * and 65.5 MB without (45.6 against 37.9 MB of the binary), at the same CPU per poll. Turned
 * off once started, the agent kept 73.4 MB: start-up had run them already. Its heavy work is
 * native or WebAssembly (hashing, CRC32, the chunker's cut, sockets), which these flags leave
 * alone: in-process chunking and plan latency measured the same with or without them. Moving
 * data is another matter (turnOptimizingCompilersOn).
 */
export function leaveOptimizingCompilersOff(): void {
  // Not import(): a module namespace reads every export, and lazy ones load more (undici, 13 ms).
  for (const name of BUILTINS_BEFORE_READY) process.getBuiltinModule(name);
  setFlagsFromString('--no-maglev');
  setFlagsFromString('--no-turbofan');
}

/**
 * Turns the optimizing compilers back on, for an agent that moves data: its JavaScript per
 * chunk, pack and request (the uploads, the manifests) then runs optimized again. A 10 GiB
 * background sync took 1.94 and 2.04 CPU-s per GB without them, 1.76 and 1.89 with them
 * (sync-memory, interleaved). The flags are read each time V8 decides to optimize a function.
 */
export function turnOptimizingCompilersOn(): void {
  setFlagsFromString('--maglev');
  setFlagsFromString('--turbofan');
}
