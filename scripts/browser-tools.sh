#!/usr/bin/env bash
# The headless browser of the browser tests: Debian's chromium (installed
# by scripts/install-deps.sh browser) driven by playwright-core, pinned in
# tests/browser/package-lock.json and installed with `npm ci` into DIR
# (default build/tools/browser) unless that install is of this lock file
# already. Prints DIR. Needs node and npm.
#
# Run: scripts/browser-tools.sh [DIR]   (tests/integration/test_proxies.py)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pin="$root/tests/browser"
dir=${1:-$root/build/tools/browser}
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "browser-tools: $tool is not installed" >&2; exit 1; }
done
[[ -x /usr/bin/chromium ]] || { echo "browser-tools: /usr/bin/chromium is missing (scripts/install-deps.sh browser)" >&2; exit 1; }
if ! cmp -s "$pin/package-lock.json" "$dir/package-lock.json" ||
   [[ ! -d "$dir/node_modules/playwright-core" ]]; then
  echo "browser-tools: installing the pinned playwright-core into $dir" >&2
  mkdir -p "$dir"
  cp "$pin/package.json" "$pin/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
# The test script runs from DIR, where its import finds playwright-core.
cp "$pin/browser_test.mjs" "$dir/"
echo "$dir"
