#!/bin/sh
# Installs what preemptd needs at run time into DEST: package.json, the compiled dist/src
# and the production dependencies (npm ci --omit=dev), without docs, TypeScript sources and
# declarations (Node never runs .ts under node_modules) or source maps. The Dockerfile and
# the .deb both ship exactly this. Build dist first.
#
#   sh packaging/install-production.sh DEST
set -eu
dest=${1:?usage: install-production.sh DEST}
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$repo/dist/src/cli.js" ]; then
  echo "install-production.sh: $repo/dist/src/cli.js is missing: build first (npm run build)" >&2
  exit 1
fi

mkdir -p "$dest/dist"
rm -rf "$dest/dist/src" "$dest/node_modules"
cp "$repo/package.json" "$repo/package-lock.json" "$dest/"
cp -R "$repo/dist/src" "$dest/dist/src"
# No dependency needs an install script at run time (package.json allowScripts lists dev tools only).
(cd "$dest" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
find "$dest/node_modules" -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \
  -o -name '*.md' -o -name '*.markdown' -o -name '*.tsbuildinfo' \) -delete
