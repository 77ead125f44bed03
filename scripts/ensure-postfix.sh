#!/bin/sh
# Postfix's smtp-sink and smtp-source for the delivery benchmark, without installing Postfix:
# `apt-get download postfix` + `dpkg-deb -x` into a cache folder (default .cache/postfix).
# Prints the folder holding the two programs; run them with LD_LIBRARY_PATH=<that>/../lib/postfix.
# Exit 1 (and say why on stderr) when they cannot be had, e.g. offline or not Debian.
set -eu
cache="${1:-$(dirname "$0")/../.cache/postfix}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
sbin="$cache/root/usr/sbin"
if [ -x "$sbin/smtp-sink" ] && [ -x "$sbin/smtp-source" ]; then
    echo "$sbin"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "ensure-postfix: needs apt-get and dpkg-deb (Debian/Ubuntu)" >&2
    exit 1
fi
if ! (cd "$cache" && apt-get download postfix >/dev/null 2>"$cache/download.log"); then
    echo "ensure-postfix: apt-get download postfix failed: $(tail -n 1 "$cache/download.log")" >&2
    exit 1
fi
deb="$(ls -t "$cache"/postfix_*.deb | head -n 1)"
dpkg-deb -x "$deb" "$cache/root"
rm -f "$deb"
if [ ! -x "$sbin/smtp-sink" ] || [ ! -x "$sbin/smtp-source" ]; then
    echo "ensure-postfix: the package holds no smtp-sink/smtp-source" >&2
    exit 1
fi
echo "$sbin"
