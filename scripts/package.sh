#!/usr/bin/env bash
# Everything pc-autoscaler ships, written to target/package/ with a SHA256SUMS file:
#
#   pc-autoscaler_VERSION_amd64.deb                 the Debian package
#   pc-autoscaler-VERSION-x86_64-linux-musl.tar.gz  binary, man pages, completions, unit,
#                                                   example configs, licence
#   pc-autoscaler-VERSION.oci.tar                   the container image (OCI archive)
#
# All three carry the same static musl binary, stripped. PROFILE picks the cargo profile
# it is built with: `release` by default (whole-program optimisation, 8 to 20 minutes on
# two cores); the test suite passes `static-check`, the build it has already made.
#
# The .deb is assembled with dpkg-deb over a staged tree rather than with cargo-deb:
# cargo-deb would be one more tool to build from source on every fresh machine (minutes
# of the test suite's budget) to do what a control file and dpkg-deb do here.
# The image is built by buildah from the Dockerfile, with no daemon, from scratch: no
# registry serves base images on the build machines, and the image needs none.
# Lintian finds two warnings in the .deb, both as intended; tests/packages.rs says why.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${PROFILE:-release}
triple=x86_64-unknown-linux-musl
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
name=pc-autoscaler
out=target/package
stage=$out/stage

echo "== static musl build (profile $profile)"
cargo build --profile "$profile" --locked --target "$triple" --bin "$name"
built=target/$triple/$profile/$name
[ "$profile" = dev ] && built=target/$triple/debug/$name

rm -rf "$out"
mkdir -p "$stage"/{bin,man,completions}
install -m 0755 "$built" "$stage/bin/$name"
strip "$stage/bin/$name"
binary=$stage/bin/$name
"$binary" man --out "$stage/man" >/dev/null
"$binary" completions bash >"$stage/completions/$name.bash"
"$binary" completions zsh >"$stage/completions/_$name"
"$binary" completions fish >"$stage/completions/$name.fish"
# Dates inside the archives are the commit's, so two builds of a commit are alike.
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$epoch

echo "== Debian package"
deb=$out/deb
install -D -m 0755 "$binary" "$deb/usr/bin/$name"
install -D -m 0644 systemd/$name.service "$deb/lib/systemd/system/$name.service"
install -D -m 0644 config/packaged.toml "$deb/etc/$name/config.toml"
install -D -m 0600 deploy/debian/environment "$deb/etc/$name/environment"
for page in "$stage"/man/*.1; do
  install -D -m 0644 "$page" "$deb/usr/share/man/man1/$(basename "$page")"
  gzip -9n "$deb/usr/share/man/man1/$(basename "$page")"
done
install -D -m 0644 "$stage/completions/$name.bash" "$deb/usr/share/bash-completion/completions/$name"
install -D -m 0644 "$stage/completions/_$name" "$deb/usr/share/zsh/vendor-completions/_$name"
install -D -m 0644 "$stage/completions/$name.fish" "$deb/usr/share/fish/vendor_completions.d/$name.fish"
doc=$deb/usr/share/doc/$name
install -D -m 0644 deploy/debian/copyright "$doc/copyright"
for policy in config/iam-policy*.json; do
  install -D -m 0644 "$policy" "$doc/iam/$(basename "$policy")"
done
install -D -m 0644 deploy/grafana/$name.json "$doc/grafana/$name.json"
install -D -m 0644 deploy/prometheus/alerts.yml "$doc/prometheus/alerts.yml"
install -D -m 0644 deploy/prometheus/scrape.yml "$doc/prometheus/scrape.yml"
{
  echo "$name ($version) unstable; urgency=medium"
  echo
  echo "  * Release $version; CHANGELOG.md in the source says what changed."
  echo
  echo " -- pc-autoscaler maintainers <maintainers@pc-autoscaler.org>  $(date -u -R -d "@$epoch")"
} >"$doc/changelog"
gzip -9n "$doc/changelog"
mkdir -p "$deb/DEBIAN"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$deb/DEBIAN/"
printf '/etc/%s/config.toml\n/etc/%s/environment\n' "$name" "$name" >"$deb/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$deb" | cut -f1)
cat >"$deb/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: amd64
Maintainer: pc-autoscaler maintainers <maintainers@pc-autoscaler.org>
Installed-Size: $size
Depends: adduser
Section: admin
Priority: optional
Description: autoscaler for AWS Lambda provisioned concurrency
 A daemon that keeps each Lambda function's provisioned concurrency where its
 schedules, its CloudWatch metrics and a forecast from its own history say it
 should be, within each account's control-plane budget, with every decision
 explained. It runs as a systemd service and is scraped by Prometheus.
EOF
(cd "$deb" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums)
find "$deb" -exec touch -h -d "@$epoch" {} +
dpkg-deb --root-owner-group -Zxz --build "$deb" "$out/${name}_${version}_amd64.deb" >/dev/null

echo "== release tarball"
tarball=$name-$version-x86_64-linux-musl
mkdir -p "$stage/$tarball"/{man,completions,systemd,config}
cp "$binary" README.md LICENSE "$stage/$tarball/"
cp "$stage"/man/*.1 "$stage/$tarball/man/"
cp "$stage"/completions/* "$stage/$tarball/completions/"
cp systemd/$name.service "$stage/$tarball/systemd/"
cp config/example.toml config/packaged.toml "$stage/$tarball/config/"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  -C "$stage" -czf "$out/$tarball.tar.gz" "$tarball"

echo "== container image (buildah, FROM scratch)"
root=$out/image-root
install -D -m 0755 "$binary" "$root/usr/bin/$name"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$root/etc/$name"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
image=localhost/$name:$version
buildah --storage-driver vfs bud --isolation chroot --quiet --timestamp "$epoch" \
  -f Dockerfile -t "$image" . >/dev/null
rm -f "$out/$name-$version.oci.tar"
buildah --storage-driver vfs push --quiet "$image" "oci-archive:$out/$name-$version.oci.tar:$image" >/dev/null

echo "== sums"
(cd "$out" && sha256sum ./*.deb ./*.tar.gz ./*.oci.tar | sed 's| \./| |' >SHA256SUMS)
for artifact in "$out"/*.deb "$out"/*.tar.gz "$out"/*.oci.tar "$stage/bin/$name"; do
  echo "$(du -h "$artifact" | cut -f1)  $artifact"
done
