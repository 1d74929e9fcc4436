#!/usr/bin/env bash
# `make bench-http`: wrk against a Release `tessera serve` (SQLite, FULL
# sync, access log off) for JWKS, validate, forward-auth (wrk's address as
# the trusted proxy; also with authz_upstream_token) and refresh, DURATION seconds
# each; prints a table and writes it into docs/benchmarks.md between the
# bench-http markers. wrk and the server share the machine's cores, as in
# the fastify figure the issue quotes. SERVE_ARGS adds settings to the
# server's command line (e.g. "--store-workers 0"); NO_DOC=1 leaves the
# docs alone (for trying settings).
set -euo pipefail
build=${1:?usage: bench-http.sh BUILD_DIR}
duration=${DURATION:-10}
tessera="$build/src/cli/tessera"
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/bench-lib.sh"
work=$(mktemp -d /tmp/tessera-bench-http-XXXXXX)
cleanup() {
  stop_serve
  rm -rf "$work"
}
trap cleanup EXIT

api_key="tsk_$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
hash=$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)
# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
start_serve "$tessera" "$work" "$hash" --data-dir "$work/data" --trusted-proxies 127.0.0.1 \
  ${SERVE_ARGS:-}
port=$serve_port
base="http://127.0.0.1:$port"

run_wrk() {  # file key, label, connections, extra args...
  local key=$1 name=$2 conns=$3
  shift 3
  local out="$work/wrk-$key.txt"
  wrk -t2 -c"$conns" -d"${duration}s" --latency "$@" >"$out"
  local rps p50 p99 bad
  read -r rps p50 p99 bad < <(wrk_fields "$out")
  printf '| %s | %s | %'"'"'.0f | %s | %s | %s |\n' "$name" "$conns" "$rps" "$p50" "$p99" "$bad"
}

echo "bench-http: preparing sessions" >&2
/usr/bin/python3 "$here/bench/http/prepare.py" "$port" "$api_key" cookie 20000 "$work/cookies"
/usr/bin/python3 "$here/bench/http/prepare.py" "$port" "$api_key" token 60000 "$work/refresh"

table="$work/table.md"
{
  echo "| route | connections | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
  run_wrk jwks "GET /.well-known/jwks.json" 64 "$base/.well-known/jwks.json"
  TOKENS="$work/cookies" API_KEY="$api_key" \
    run_wrk validate "POST /v1/sessions/validate (cookie)" 64 -s "$here/bench/http/validate.lua" "$base"
  TOKENS="$work/cookies" HOST="127.0.0.1:$port" \
    run_wrk forward_auth "GET /v1/authz/forward-auth (cookie)" 64 -s "$here/bench/http/forward_auth.lua" "$base"
  TOKENS="$work/refresh" THREADS=2 \
    run_wrk refresh "POST /v1/tokens/refresh (rotation)" 32 -s "$here/bench/http/refresh.lua" "$base"
  # The same sessions (the SQLite file stays), now with an access token for
  # the upstream on every allow: one mint per session, then kept.
  stop_serve
  # shellcheck disable=SC2086
  start_serve "$tessera" "$work" "$hash" --data-dir "$work/data" --trusted-proxies 127.0.0.1 \
    --authz-upstream-token true ${SERVE_ARGS:-}
  TOKENS="$work/cookies" HOST="127.0.0.1:$serve_port" \
    run_wrk forward_auth_token "GET /v1/authz/forward-auth (cookie, upstream token)" 64 \
    -s "$here/bench/http/forward_auth.lua" "http://127.0.0.1:$serve_port"
} >"$table"
cat "$table"

[[ -n "${NO_DOC:-}" ]] && exit 0
machine=$(machine_description)
PYTHONPATH="$here/scripts" /usr/bin/python3 - "$here/docs/benchmarks.md" "$table" "$duration" "$machine" <<'PY'
from doc_section import write_section
import datetime, sys
doc, table, duration, machine = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3], sys.argv[4]
body = (f"Last run: {datetime.date.today()} — `make bench-http` (Release, SQLite FULL, "
        f"access log off, wrk -t2, {duration} s per route, wrk on the same cores). "
        f"Machine: {machine}.\n\n{table}")
write_section(doc, "bench-http", body)
PY
