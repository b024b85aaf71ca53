import { enableCompileCache } from 'node:module';

// The compile cache serves only modules loaded after it is on, so the CLI is loaded after it.
// Its directory is NODE_COMPILE_CACHE (the systemd unit sets it) or one under the temp dir.
enableCompileCache();
await import('./cli.js');
