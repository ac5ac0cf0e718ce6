#!/usr/bin/env bash
# Builds the real lnd + lncli (peers/lnd/VERSION) and btcd + btcctl (peers/lnd/BTCD_VERSION) from
# the Go module proxy into the peer cache, outside the repo, keyed by name and version. Does
# nothing for a pair already there, so a fresh clone on the same machine reuses them.
# lnd is built inside its own downloaded module (`go install …@version` is refused because lnd's
# go.mod has replace directives; its own folder is a main module, so they apply exactly as in
# lnd's release builds), with the RPC subservers of its releases that the gateway uses.
# Prints the two bin folders on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lnd_version="$(cat "$here/VERSION")"
btcd_version="$(cat "$here/BTCD_VERSION")"
root="${FMGW_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fmgw-peers}"
lnd_bin="$root/lnd-$lnd_version/bin"
btcd_bin="$root/btcd-$btcd_version/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
command -v go >/dev/null || { echo "peers: go is needed to build lnd and btcd" >&2; exit 1; }

if ! { [ -x "$btcd_bin/btcd" ] && [ -x "$btcd_bin/btcctl" ]; }; then
  start=$(date +%s)
  echo "peers: building btcd + btcctl $btcd_version into $btcd_bin" >&2
  tmp="$root/btcd-$btcd_version/.bin.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN="$tmp" go install "github.com/btcsuite/btcd@$btcd_version" \
    "github.com/btcsuite/btcd/cmd/btcctl@$btcd_version" >&2
  rm -rf "$btcd_bin" && mv "$tmp" "$btcd_bin"
  echo "peers: btcd built in $(( $(date +%s) - start )) s" >&2
fi

if ! { [ -x "$lnd_bin/lnd" ] && [ -x "$lnd_bin/lncli" ]; }; then
  start=$(date +%s)
  echo "peers: building lnd + lncli $lnd_version into $lnd_bin (about 15 min on 2 cores)" >&2
  src="$(go mod download -json "github.com/lightningnetwork/lnd@$lnd_version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -f "$src/go.mod" ] || { echo "peers: lnd $lnd_version did not download" >&2; exit 1; }
  tmp="$root/lnd-$lnd_version/.bin.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tags="signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"
  ldflags="-s -w -X github.com/lightningnetwork/lnd/build.Commit=$lnd_version"
  for cmd in lnd lncli; do
    (cd "$src" && go build -trimpath -tags="$tags" -ldflags="$ldflags" -o "$tmp/$cmd" "./cmd/$cmd") >&2
  done
  rm -rf "$lnd_bin" && mv "$tmp" "$lnd_bin"
  echo "peers: lnd built in $(( $(date +%s) - start )) s" >&2
fi
echo "$lnd_bin $btcd_bin"
