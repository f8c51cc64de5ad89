#!/usr/bin/env bash
# Builds the Debian package uplinkd_<version>_<arch>.deb for this machine's architecture with
# dpkg-deb, from the checkout as it is after `npm ci && npm run build` (nothing is downloaded).
# Prints the .deb's path as its last line. Layout and reasons: docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
umask 022

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
node_arch=$(node -p process.arch)
changelog_version=$(sed -n '1s/^uplinkd (\([^)]*\)).*/\1/p' packaging/changelog)
if [ "$changelog_version" != "$version" ]; then
	echo "package.sh: packaging/changelog is at $changelog_version but package.json at $version: add a changelog entry" >&2
	exit 1
fi
[ -f dist/src/cli/main.js ] && [ -f dist/scripts/man.js ] || { echo "package.sh: run npm run build first" >&2; exit 1; }
addon=src/health/native/build/Release/uplinkd_icmp.node
nl_addon=src/netlink/native/build/Release/uplinkd_netlink.node
ctl_addon=src/daemon/native/build/Release/uplinkd_control.node
nft_addon=src/netlink/native/build/Release/uplinkd_nft.node
[ -f "$addon" ] && [ -f "$nl_addon" ] && [ -f "$ctl_addon" ] && [ -f "$nft_addon" ] || npm run build:native >&2

out=dist/deb
stage=$(mktemp -d "${TMPDIR:-/tmp}/uplinkd-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
lib=$stage/usr/lib/uplinkd
doc=$stage/usr/share/doc/uplinkd
install -d "$lib/bin" "$lib/dist" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/uplinkd" \
	"$stage/usr/share/uplinkd" "$stage/usr/share/man/man5" "$stage/usr/share/man/man8" \
	"$stage/usr/share/bash-completion/completions" "$doc/docs" "$stage/DEBIAN"

# The program: compiled sources (dist/src only: not the lab in dist/lab, not the test doubles in dist/test) without tests or source maps, the ICMP,
# netlink-socket-option, libnftables and control-socket addons where src/health/native.ts, src/netlink/sockopt.ts,
# src/nft/libnftables.ts and src/daemon/control-client.ts look for them (beside their compiled folders), and a package.json for --version.
(cd dist && find src -name '*.js' ! -name '*.test.js' -print0 | xargs -0 cp --parents -t "$lib/dist")
install -d "$lib/dist/src/health/native/build/Release"
install -m 0644 "$addon" "$lib/dist/src/health/native/build/Release/"
install -d "$lib/dist/src/netlink/native/build/Release"
install -m 0644 "$nl_addon" "$nft_addon" "$lib/dist/src/netlink/native/build/Release/"
install -d "$lib/dist/src/daemon/native/build/Release"
install -m 0644 "$ctl_addon" "$lib/dist/src/daemon/native/build/Release/"
node -e 'const p = require("./package.json");
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license, private: true, main: "dist/src/cli/main.js" };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' >"$lib/package.json"
sed '1s|.*|#!/usr/bin/node|' bin/uplinkd >"$lib/bin/uplinkd"
chmod 0755 "$lib/bin/uplinkd"
ln -s ../lib/uplinkd/bin/uplinkd "$stage/usr/bin/uplinkd"

# Production dependencies only (what `npm ci --omit=dev` would install), copied from node_modules;
# prebuilt binaries only for this architecture (node-gyp-build picks prebuilds/linux-<arch>).
mapfile -t deps < <(npm ls --omit=dev --all --parseable | tail -n +2)
for dir in "${deps[@]}"; do
	rel=${dir#"$root"/}
	install -d "$lib/$(dirname "$rel")"
	cp -a "$dir" "$lib/$rel"
done
find "$lib/node_modules" -depth -type d -path '*/prebuilds/*' ! -name "linux-$node_arch" -prune -exec rm -rf {} +
# Type declarations and TypeScript sources, source maps, readmes and dotfiles have no use at run time.
find "$lib/node_modules" \( -name '*.map' -o -name '*.ts' -o -name '.*' -o -name '*.md' ! -iname 'license*' \) -type f -delete
find "$lib/node_modules" -depth -type d -empty -delete

install -m 0644 packaging/uplinkd.yaml "$stage/etc/uplinkd/uplinkd.yaml"
sed 's|/usr/local/bin/uplinkd|/usr/bin/uplinkd|g; s|^# uplinkd: multi-uplink routing manager. Install: see docs/daemon.md.|# uplinkd: multi-uplink routing manager. See uplinkd(8).|' \
	contrib/systemd/uplinkd.service >"$stage/lib/systemd/system/uplinkd.service"
install -m 0644 src/config/uplinkd.schema.json "$stage/usr/share/uplinkd/uplinkd.schema.json"
install -m 0644 packaging/uplinkd.bash-completion "$stage/usr/share/bash-completion/completions/uplinkd"

date=$(date -u -d "$(sed -n 's/^ -- .*>  //p' packaging/changelog | head -1)" +%F)
node dist/scripts/man.js "$stage/usr/share/man/tmp" "$version" "$date"
mv "$stage/usr/share/man/tmp/uplinkd.8" "$stage/usr/share/man/man8/"
mv "$stage/usr/share/man/tmp/uplinkd.yaml.5" "$stage/usr/share/man/man5/"
rmdir "$stage/usr/share/man/tmp"
gzip -9n "$stage/usr/share/man/man8/uplinkd.8" "$stage/usr/share/man/man5/uplinkd.yaml.5"

install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/*.md "$doc/docs/"
gzip -9n -c packaging/changelog >"$doc/changelog.gz"
{
	cat packaging/copyright
	# Each bundled npm package with its licence, from its own package.json and LICENSE file.
	for dep in "${deps[@]}"; do
		dir=$lib/${dep#"$root"/}
		name=$(node -p 'require(process.argv[1]).name' "$dir/package.json")
		license=$(node -p 'require(process.argv[1]).license || "see LICENSE"' "$dir/package.json")
		echo
		echo "Files: ${dir#"$stage"/}/*"
		echo "Copyright: the authors of the npm package $name"
		echo "License: $license"
		lic=$(find "$dir" -maxdepth 1 -iname 'license*' | head -1)
		[ -n "$lic" ] && sed 's/^$/./; s/^/ /' "$lic"
	done
} >"$doc/copyright"


# Owner root (dpkg-deb --root-owner-group); directories 0755, files 0644, programs 0755.
chmod 0755 "$stage"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$lib/bin/uplinkd"
# Scripts bundled npm packages ship (#! first) keep their executable bit.
find "$lib/node_modules" -type f -name '*js' -exec grep -lZ -m1 '^#!' {} + | xargs -0 -r chmod 0755
# Shared objects are shipped stripped (Debian policy 10.2), prebuilt ones included.
find "$lib" -name '*.node' -type f -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +

# Control files.
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
echo /etc/uplinkd/uplinkd.yaml >"$stage/DEBIAN/conffiles"
shlibs_dir=$(mktemp -d)
mkdir "$shlibs_dir/debian"
printf 'Source: uplinkd\n\nPackage: uplinkd\nArchitecture: any\n' >"$shlibs_dir/debian/control"
mapfile -t elves < <(find "$lib" -name '*.node' -type f)
shlibs=$(cd "$shlibs_dir" && dpkg-shlibdeps -O --warnings=0 "${elves[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlibs_dir"
[ -n "$shlibs" ] || { echo "package.sh: dpkg-shlibdeps found no library dependencies for ${elves[*]}" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed "s/@VERSION@/$version/; s/@ARCH@/$arch/; s/@SIZE@/$size/; s/@SHLIBS@/$shlibs/" packaging/control >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/uplinkd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$root/$deb"
