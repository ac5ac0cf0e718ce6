#!/usr/bin/env bash
# Builds fedimint's own gateway, gatewayd and gateway-cli 0.13.0 (peers/gatewayd: committed
# Cargo.lock, begun from peers/fedimint's), for the side-by-side benchmark (`make bench`; `make
# test` does not need it). Into the peer cache, outside the repo, keyed by name and version; in
# the fedimint build's cargo target folder, so that the crates both graphs share compile once.
# Does nothing when both binaries are there. Prints the folder holding them on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(cat "$here/VERSION")"
root="${FMGW_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fmgw-peers}"
bin="$root/gatewayd-$version/bin"
if [ -x "$bin/gatewayd" ] && [ -x "$bin/gateway-cli" ]; then
  echo "$bin"
  exit 0
fi
# the Debian packages fedimintd's build needs (clang, protoc, OpenSSL) serve this one too
bash "$here/../fedimint/build.sh" >/dev/null
target="$root/fedimint-$version/target"
start=$(date +%s)
echo "peers: building gatewayd + gateway-cli $version into $root/gatewayd-$version (about 40 min on 2 cores after fedimintd)" >&2
# gatewayd: our one-file entry (src/bin/gatewayd.rs); gateway-cli: the crate's own binary
CARGO_TARGET_DIR="$target" cargo build --release --locked --manifest-path "$here/Cargo.toml" \
  --bin gatewayd >&2
CARGO_TARGET_DIR="$target" cargo build --release --locked --manifest-path "$here/Cargo.toml" \
  -p fedimint-gateway-client --bin gateway-cli >&2
mkdir -p "$bin"
for b in gatewayd gateway-cli; do
  cp "$target/release/$b" "$bin/.$b.tmp"
  mv "$bin/.$b.tmp" "$bin/$b"
done
echo "peers: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
