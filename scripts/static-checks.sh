#!/bin/sh
# npm test's first stage: lint, and one tsc run that type-checks src, test, bench and scripts
# and writes dist/ (the system tests start dist/src/cli.js). Two single-threaded programs,
# run side by side on two cores: about 8 s instead of 16 s for typecheck, lint and build in
# a row (docs/benchmarks.md, "npm test").
set -u
npx eslint . &
lint=$!
npx tsc -p tsconfig.json
tsc=$?
wait "$lint"
lint=$?
[ "$tsc" -eq 0 ] && [ "$lint" -eq 0 ]
