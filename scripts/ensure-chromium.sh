#!/usr/bin/env bash
# Browser tests drive Debian's chromium (no browser download works here). Install it when missing.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
else
  echo "warning: /usr/bin/chromium missing and cannot install it (need root + apt-get); browser tests will be skipped" >&2
fi
exit 0
