#!/usr/bin/env bash
# The npm packages of one test folder, pinned in its package-lock.json and
# installed with `npm ci` into DIR (default build/tools/NAME) unless that
# install is of this lock file already; the folder's *.mjs scripts are
# copied beside them, where their imports find the packages. Prints DIR.
# Needs node and npm (scripts/install-deps.sh).
#
# Run: scripts/node-tools.sh tests/NAME [DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pin=$(cd "$1" && pwd)
dir=${2:-$root/build/tools/$(basename "$pin")}
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "node-tools: $tool is not installed" >&2; exit 1; }
done
if ! cmp -s "$pin/package-lock.json" "$dir/package-lock.json" || [[ ! -d "$dir/node_modules" ]]; then
  echo "node-tools: installing the packages pinned in $pin into $dir" >&2
  mkdir -p "$dir"
  cp "$pin/package.json" "$pin/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
cp "$pin"/*.mjs "$dir/"
echo "$dir"
