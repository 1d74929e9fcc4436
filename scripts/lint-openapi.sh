#!/usr/bin/env bash
# Lints docs/openapi.yaml as client generators read it: Redocly CLI with the
# `recommended-strict` ruleset (every warning is an error). The linter is
# pinned in scripts/openapi-lint/package-lock.json and installed on demand
# with `npm ci` into build/tools/openapi-lint/ (override with
# OPENAPI_LINT_DIR); a second run reuses that install as long as the lock
# file has not changed. Needs node >= 18.17 and npm (scripts/install-deps.sh
# lint). Exits non-zero on any finding, or when the linter cannot be
# installed.
#
# Run: scripts/lint-openapi.sh [SPEC]   (make lint-api; a stage of .ci/run)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pin="$root/scripts/openapi-lint"
dir=${OPENAPI_LINT_DIR:-$root/build/tools/openapi-lint}
spec=${1:-$root/docs/openapi.yaml}

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "lint-openapi: $tool is not installed (scripts/install-deps.sh lint)" >&2; exit 1; }
done

# Installed iff the copy of the lock file beside node_modules is this one.
if ! cmp -s "$pin/package-lock.json" "$dir/package-lock.json" ||
   [[ ! -x "$dir/node_modules/.bin/redocly" ]]; then
  echo "lint-openapi: installing the pinned @redocly/cli into $dir" >&2
  mkdir -p "$dir"
  cp "$pin/package.json" "$pin/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# No telemetry, no update check: a lint run talks to nobody.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$dir/node_modules/.bin/redocly" lint --extends=recommended-strict --format=stylish "$spec"
