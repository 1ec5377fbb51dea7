#!/usr/bin/env bash
# What the browser tests need, installed when missing: Debian's Chromium
# (when this user may install packages) and playwright-core, the version
# pinned in package-lock.json. Playwright's own browser download is never
# used: the tests drive /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null 2>&1; then
  install=(apt-get install -y -q --no-install-recommends chromium)
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=(false)
  fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" "${install[@]}" >/dev/null ||
      { "${as_root[@]}" apt-get update -q >/dev/null && "${as_root[@]}" "${install[@]}" >/dev/null; } ||
      echo "chromium could not be installed" >&2
  fi
fi

npm ci --no-audit --no-fund --loglevel=error
