#!/usr/bin/env bash
# Installs the real bitcoind the Fedimint tests run beside fedimintd: Bitcoin Knots from Debian's
# unstable suite, downloaded with a private apt configuration and unpacked (dpkg -x) into the
# peer cache, never into the system. Run through the folder's own dynamic loader by
# peers/bitcoind/bitcoind. Does nothing when it is already there. Prints the folder on its
# last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${KNOTS_VERSION:-$(cat "$here/VERSION")}"
cache="${FMGW_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fmgw-peers}/bitcoin-knots-$version"
root="$cache/root"
if [ -x "$root/usr/bin/bitcoind" ]; then
  echo "$cache"
  exit 0
fi
mkdir -p "$cache"
work="$(mktemp -d "$cache/.apt.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main" \
  > "$work/etc/sources.list"
touch "$work/status"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/etc/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/lists" -o "Dir::State::Status=$work/status"
  -o "Dir::Cache::Archives=$work/archives" -o "Dir::Cache=$work"
  -o "Acquire::Check-Valid-Until=false" -o "APT::Architecture=amd64"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
)
echo "peers: fetching bitcoin-knots $version and its libraries from Debian unstable" >&2
apt-get "${apt_opts[@]}" -qq update >&2
# bitcoind's libraries, found by following readelf -d NEEDED entries (see the testing reference)
pkgs=("bitcoin-knots=$version" libc6 libstdc++6 libgcc-s1 libevent-core-2.1-7t64 libevent-extra-2.1-7t64
  libevent-pthreads-2.1-7t64 libsqlite3-0 libzmq5 libsodium26 libbsd0 libmd0 libnorm1t64
  libpgm-5.3-0t64 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2
  libkeyutils1)
if ! apt-cache "${apt_opts[@]}" show "bitcoin-knots=$version" >/dev/null 2>&1; then
  got="$(apt-cache "${apt_opts[@]}" show bitcoin-knots | sed -n 's/^Version: //p' | tr '\n' ' ')"
  echo "peers: Debian unstable serves bitcoin-knots $got, not $version (update peers/bitcoind/VERSION)" >&2
  exit 1
fi
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" >&2)
rm -rf "$root.tmp" && mkdir -p "$root.tmp"
for d in "$work"/debs/*.deb; do dpkg -x "$d" "$root.tmp"; done
"$root.tmp/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
  --library-path "$root.tmp/usr/lib/x86_64-linux-gnu" "$root.tmp/usr/bin/bitcoind" -version | head -1 >&2
rm -rf "$root" && mv "$root.tmp" "$root"
echo "$cache"
