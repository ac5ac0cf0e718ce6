#!/usr/bin/env bash
# Builds the real fedimintd and fedimint-cli 0.13.0 (peers/fedimint: one cargo graph, committed
# Cargo.lock) into the peer cache, outside the repo, keyed by name and version. Does nothing when
# both binaries are already there, so a fresh clone on the same machine reuses them.
# Prints the folder holding the binaries on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(cat "$here/VERSION")"
cache="${FMGW_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fmgw-peers}/fedimint-$version"
bin="$cache/bin"
if [ -x "$bin/fedimintd" ] && [ -x "$bin/fedimint-cli" ]; then
  echo "$bin"
  exit 0
fi

# RocksDB's bindings are generated with libclang; some crates compile .proto files.
need=()
command -v clang >/dev/null || need+=(clang)
[ -n "$(ls /usr/lib/llvm-*/lib/libclang.so* 2>/dev/null)" ] || need+=(libclang-dev)
command -v protoc >/dev/null || need+=(protobuf-compiler)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  echo "peers: installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$cache"
start=$(date +%s)
echo "peers: building fedimintd + fedimint-cli $version into $cache (about 40 min on 2 cores the first time)" >&2
CARGO_TARGET_DIR="$cache/target" cargo build --release --locked \
  --manifest-path "$here/Cargo.toml" >&2
mkdir -p "$bin"
for b in fedimintd fedimint-cli; do
  cp "$cache/target/release/$b" "$bin/.$b.tmp"
  mv "$bin/.$b.tmp" "$bin/$b"
done
echo "peers: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
