#!/usr/bin/env bash
# The headless browser of the browser tests: Debian's chromium (installed
# by scripts/install-deps.sh browser) driven by playwright-core, pinned in
# tests/browser/package-lock.json and installed into DIR (default
# build/tools/browser) by scripts/node-tools.sh. Prints DIR.
#
# Run: scripts/browser-tools.sh [DIR]   (tests/integration/test_proxies.py)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -x /usr/bin/chromium ]] || { echo "browser-tools: /usr/bin/chromium is missing (scripts/install-deps.sh browser)" >&2; exit 1; }
exec "$root/scripts/node-tools.sh" "$root/tests/browser" "$@"
