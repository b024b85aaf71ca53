#!/bin/sh
# npm test's first stage: lint, and one tsc run that type-checks src, test, bench and scripts
# and writes dist/ as `npm run build` does, without source maps (the system tests start
# dist/src/cli.js), then the bundle the .deb ships (dist/bundle). Two single-threaded programs
# side by side on two cores: about 11 s instead of 16 s for typecheck, lint and build in a row
# (docs/benchmarks.md, "npm test").
set -u
npx eslint . &
lint=$!
npx tsc -p tsconfig.json --sourceMap false
tsc=$?
# esbuild: about 2 s. test/system/bundle.test.ts checks what it writes.
node scripts/bundle.ts || tsc=1
wait "$lint"
lint=$?
[ "$tsc" -eq 0 ] && [ "$lint" -eq 0 ]
