#!/bin/sh
# Builds preemptd_<version>_amd64.deb with dpkg-deb (npm run package:deb builds first); the
# version is the top entry of packaging/deb/changelog, whose upstream part must be package.json's:
#   /opt/preemptd/lib             the bundled agent (dist/bundle, packaging/install-bundle.sh)
#   /opt/preemptd/node_modules    the two packages the bundle leaves external
#   /opt/preemptd/bin/node        Node.js 24
#   /usr/bin/preemptd             the CLI on that runtime
#   /usr/lib/systemd/system/preemptd.service, /usr/lib/sysusers.d/preemptd.conf
#   /etc/preemptd/config.yaml     conffile: upgrades keep the admin's edits
#   /var/lib/preemptd             state dir (the unit's StateDirectory= hands it to the user)
#   /usr/share/doc/preemptd       copyright, changelog.Debian.gz, README.md, deploy.md
# lintian-overrides says which lintian findings remain and why.
#   /usr/share/preemptd/preemptd.schema.json, bash and zsh completions, man page preemptd(1)
# Output: packaging/deb/build/ (PREEMPTD_DEB_OUT overrides). PREEMPTD_DEB_COMPRESSION
# (xz by default; gzip or none build faster) is passed to dpkg-deb -Z.
set -eu
umask 022
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${PREEMPTD_DEB_OUT:-$here/build}
compression=${PREEMPTD_DEB_COMPRESSION:-xz}

# The runtime: the linux-x64 binary of the `node` devDependency (pinned to 24).
node_bin=$repo/node_modules/node/bin/node
node_version=$("$node_bin" -p 'process.versions.node')
node_arch=$("$node_bin" -p 'process.platform + "-" + process.arch')
case "$node_version/$node_arch" in
  24.*/linux-x64) ;;
  *) echo "build.sh: $node_bin is Node.js $node_version for $node_arch; expected 24.x for linux-x64" >&2; exit 1 ;;
esac
upstream=$("$node_bin" -p "require('$repo/package.json').version")
version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
case "$version" in
  "$upstream"-*) ;;
  *) echo "build.sh: packaging/deb/changelog is at $version; package.json is at $upstream: add a changelog entry for $upstream-1" >&2; exit 1 ;;
esac

stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/DEBIAN"
sh "$repo/packaging/install-bundle.sh" "$stage/opt/preemptd"
# Debian strips its binaries; the dynamic symbol table that native add-ons link against stays.
install -D -m 0755 "$node_bin" "$stage/opt/preemptd/bin/node"
strip "$stage/opt/preemptd/bin/node"
install -D -m 0755 "$here/preemptd.sh" "$stage/opt/preemptd/bin/preemptd"
mkdir -p "$stage/usr/bin"
ln -s /opt/preemptd/bin/preemptd "$stage/usr/bin/preemptd"
install -D -m 0644 "$repo/systemd/preemptd.service" "$stage/usr/lib/systemd/system/preemptd.service"
install -D -m 0644 "$here/preemptd.sysusers" "$stage/usr/lib/sysusers.d/preemptd.conf"
install -D -m 0644 "$repo/packaging/config.yaml" "$stage/etc/preemptd/config.yaml"
# 0755 as Debian expects; the unit's StateDirectoryMode= makes it 0750, owned by preemptd, at start.
install -d -m 0755 "$stage/var/lib/preemptd"
install -D -m 0644 "$here/copyright" "$stage/usr/share/doc/preemptd/copyright"
install -m 0644 "$repo/README.md" "$repo/docs/deploy.md" "$stage/usr/share/doc/preemptd/"
gzip -9n < "$here/changelog" > "$stage/usr/share/doc/preemptd/changelog.Debian.gz"
install -D -m 0644 "$here/lintian-overrides" "$stage/usr/share/lintian/overrides/preemptd"
# Generated from the code (npm run generate): the config's JSON Schema, completions, man page.
install -D -m 0644 "$repo/schema/preemptd.schema.json" "$stage/usr/share/preemptd/preemptd.schema.json"
install -D -m 0644 "$repo/packaging/completion/preemptd.bash" "$stage/usr/share/bash-completion/completions/preemptd"
install -D -m 0644 "$repo/packaging/completion/_preemptd" "$stage/usr/share/zsh/vendor-completions/_preemptd"
install -d -m 0755 "$stage/usr/share/man/man1"
gzip -9n < "$repo/packaging/man/preemptd.1" > "$stage/usr/share/man/man1/preemptd.1.gz"

installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: preemptd
Version: $version
Architecture: amd64
Maintainer: preemptd maintainers <maintainers@preemptd.invalid>
Installed-Size: $installed_kb
Depends: systemd (>= 247), init-system-helpers (>= 1.54~), libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1, procps
Section: admin
Priority: optional
Description: runs a shutdown plan on spot / preemptible VM interruption notices
 preemptd watches the cloud metadata service (AWS, GCP, Azure, Alibaba Cloud)
 for a spot or preemptible interruption notice and runs a plan of local steps
 inside the notice window: webhooks, HTTP drains, signals to workloads,
 commands and state snapshots to object storage. It brings its own Node.js 24
 runtime in /opt/preemptd.
CONTROL
echo /etc/preemptd/config.yaml > "$stage/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"

deb=$out/preemptd_${version}_amd64.deb
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "$deb"
