#!/bin/sh
# Installs the bundled agent into DEST, as the .deb ships it (npm run build bundles first):
#   DEST/lib/preemptd.mjs, read-worker.mjs, chunk-*.mjs and their source maps (dist/bundle)
#   DEST/node_modules/      only the packages the bundle leaves external (scripts/bundle.ts,
#                           EXTERNAL): @node-rs/crc32 with this platform's add-on, systemd-notify
# Nothing else from node_modules: everything else the agent runs is in the bundle.
#
#   sh packaging/install-bundle.sh DEST
set -eu
dest=${1:?usage: install-bundle.sh DEST}
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$repo/dist/bundle/preemptd.mjs" ]; then
  echo "install-bundle.sh: $repo/dist/bundle/preemptd.mjs is missing: build first (npm run build)" >&2
  exit 1
fi

rm -rf "$dest/lib" "$dest/node_modules"
mkdir -p "$dest/lib" "$dest/node_modules/@node-rs"
cp "$repo"/dist/bundle/*.mjs "$repo"/dist/bundle/*.mjs.map "$dest/lib/"
# The add-on npm installed for this machine (@node-rs/crc32-linux-x64-gnu on the build host).
for package in "$repo"/node_modules/@node-rs/crc32 "$repo"/node_modules/@node-rs/crc32-* "$repo/node_modules/systemd-notify"; do
  target=$dest/node_modules/${package#"$repo/node_modules/"}
  mkdir -p "$target"
  # package.json, code, add-on and licence: no tests, changelogs or lock files.
  find "$package" -maxdepth 1 -type f \( -name package.json -o -name '*.js' -o -name '*.node' -o -name 'LICENSE*' \) \
    -exec cp {} "$target/" \;
done
