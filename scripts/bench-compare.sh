#!/usr/bin/env bash
# `make bench-compare`: tessera side by side with peer session frameworks
# (bench/peers/), same wrk settings, same cores, alternating A B A B for
# ROUNDS rounds (default 2), DURATION seconds per run (default 10). Prints a
# table and writes it into docs/benchmarks.md between the bench-compare
# markers. Quick smoke run: DURATION=2 ROUNDS=1. PG=0 leaves out the
# PostgreSQL rows; otherwise the script reruns itself under
# scripts/with-servers.sh with fsync on (durability is what is measured).
# Then scripts/bench-compare-jwt.sh (JWT verification peers); JWT=0 skips it.
set -euo pipefail
build=${1:?usage: bench-compare.sh BUILD_DIR}
if [[ ${PG:-1} == 1 && -z ${BENCH_COMPARE_UNDER_SERVERS:-} ]]; then
  BENCH_COMPARE_UNDER_SERVERS=1 TESSERA_PG_FSYNC=on exec "$(dirname "$0")/with-servers.sh" "$0" "$@"
fi
pg=${BENCH_COMPARE_UNDER_SERVERS:+1}
duration=${DURATION:-10}
rounds=${ROUNDS:-2}
sessions=${SESSIONS:-20000}
# Refresh tokens prepared per refresh run: each is presented once, so a run
# needs more than the server can rotate in DURATION seconds; a shortfall
# shows as replays (non-2xx) in the errors of that row.
refresh_rate=${REFRESH_RATE:-25000}
here=$(cd "$(dirname "$0")/.." && pwd)
tessera="$build/src/cli/tessera"
peers="$here/bench/peers"
work=$(mktemp -d /tmp/tessera-bench-compare-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  # The servers started inside $(...) are not in pids (a subshell's array):
  # end them by what their command lines name.
  pkill -f -- "$work/" 2>/dev/null || true
  pkill -f -- "$peers/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

better_auth=${BETTER_AUTH:-1}
# Each better-auth session costs a sign-up (a scrypt hash), so fewer of them.
ba_sessions=${BA_SESSIONS:-2000}
[[ $better_auth == 1 && ! -d "$peers/better-auth/node_modules" ]] \
  && (cd "$peers/better-auth" && npm_config_nodedir=/usr npm ci --no-audit --no-fund >&2)
[[ -d "$peers/node_modules" ]] || (cd "$peers" && npm_config_nodedir=/usr npm ci --no-audit --no-fund >&2)

api_key="tsk_$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export SESSION_SECRET=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
export NODE_ENV=production

# The tessera command line, in one place: extra serve flags go here.
tessera_serve() {  # name, store spec, extra flags...
  local name=$1 store=$2
  shift 2
  local hash
  hash=$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)
  TESSERA_API_KEY_HASHES="sha256:$hash" "$tessera" serve --data-dir "$work/$name" \
    --listen 127.0.0.1:0 --ready-file "$work/$name.port" --access-log false --audit-log none \
    --max-sessions-per-subject 1000 --refresh-grace 10s --max-connections-per-client 0 \
    --store "$store" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do [[ -s "$work/$name.port" ]] && break; sleep 0.05; done
  cat "$work/$name.port"
}

peer_start() {  # name, program, env assignments...
  local name=$1 program=$2
  shift 2
  env "$@" DB_PATH="$work/$name.db" node "$peers/$program" >"$work/$name.port" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do [[ -s "$work/$name.port" ]] && break; sleep 0.05; done
  cat "$work/$name.port"
}

# One wrk run; appends "name rps p99ms errors" to results.
run_wrk() {  # name, connections, wrk args...
  local name=$1 conns=$2
  shift 2
  local out="$work/wrk-$name-$RANDOM.txt"
  wrk -t2 -c"$conns" -d"${duration}s" --latency "$@" >"$out" 2>&1 || true
  /usr/bin/python3 - "$out" "$name" >>"$work/results" <<'PY'
import re, sys
text, name = open(sys.argv[1]).read(), sys.argv[2]
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errs = sum(map(int, sock.groups())) if sock else 0
bad = re.search(r"non-2xx: (\d+)", text)
errs += int(bad.group(1)) if bad else 0
print(name, rps, p99, errs)
PY
  tail -1 "$work/results" >&2
}

echo "bench-compare: starting servers and preparing $sessions sessions each" >&2
declare -A port
port[tessera_mem]=$(tessera_serve tessera_mem memory:)
port[tessera_sqlite]=$(tessera_serve tessera_sqlite "sqlite://$work/tessera.db" --sqlite-synchronous full)
tessera_all=(tessera_mem tessera_sqlite)
if [[ -n $pg ]]; then
  port[tessera_pg]=$(tessera_serve tessera_pg "$TESSERA_TEST_POSTGRES_URL")
  tessera_all+=(tessera_pg)
fi
for t in "${tessera_all[@]}"; do
  /usr/bin/python3 "$here/bench/http/prepare.py" "${port[$t]}" "$api_key" cookie "$sessions" "$work/$t.tokens"
done
port[fastify_mem]=$(peer_start fastify_mem fastify-session.js)
port[fastify_sqlite]=$(peer_start fastify_sqlite fastify-session.js STORE=sqlite)
port[express_mem]=$(peer_start express_mem express-session.js)
port[express_sqlite]=$(peer_start express_sqlite express-session.js STORE=sqlite)
for p in fastify_mem fastify_sqlite express_mem express_sqlite; do
  /usr/bin/python3 "$peers/login.py" "${port[$p]}" /login '{}' "$sessions" "$work/$p.cookies"
done
if [[ $better_auth == 1 ]]; then
  # Two instances on their own databases: get-session as a read, and with
  # updateAge 0 as a write on every call.
  port[betterauth_read]=$(peer_start betterauth_read better-auth/server.mjs)
  port[betterauth_write]=$(peer_start betterauth_write better-auth/server.mjs WRITE=1)
  for p in betterauth_read betterauth_write; do
    /usr/bin/python3 "$peers/login.py" "${port[$p]}" /api/auth/sign-up/email \
      '{"email":"bench-{i}@example.com","password":"bench-password-{i}","name":"bench {i}"}' \
      "$ba_sessions" "$work/$p.cookies"
  done
fi

# Every server started here idle again (below 5 % of a core for a second)
# before anything is measured: better-auth keeps hashing sign-up passwords
# on its thread pool after the clients have their answers, and a peer busy
# in the background would take the cores from whatever runs next.
wait_idle() {
  local deadline=$((SECONDS + 600))
  while ((SECONDS < deadline)); do
    local before=0 after=0 p
    for p in "${pids[@]}"; do before=$((before + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    sleep 1
    for p in "${pids[@]}"; do after=$((after + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    (((after - before) * 100 < 5 * $(getconf CLK_TCK))) && return 0
  done
  echo "bench-compare: the servers did not go idle within 10 minutes" >&2
  return 1
}
echo "bench-compare: waiting for every server to be idle" >&2
wait_idle

validate() {  # tessera name, connections
  TOKENS="$work/$1.tokens" API_KEY="$api_key" \
    run_wrk "$1@$2" "$2" -s "$here/bench/http/validate.lua" "http://127.0.0.1:${port[$1]}"
}
refresh() {  # tessera name, connections: fresh refresh tokens, each rotated once
  local tokens="$work/$1.refresh"
  /usr/bin/python3 "$here/bench/http/prepare.py" "${port[$1]}" "$api_key" token \
    $((refresh_rate * duration)) "$tokens"
  TOKENS="$tokens" THREADS=2 \
    run_wrk "$1:refresh@$2" "$2" -s "$here/bench/http/refresh.lua" "http://127.0.0.1:${port[$1]}"
  rm -f "$tokens"
}
me() {  # peer name, connections
  COOKIES="$work/$1.cookies" PATH_ME="${PATH_ME:-/me}" run_wrk "$1@$2" "$2" -s "$peers/me.lua" "http://127.0.0.1:${port[$1]}"
}

: >"$work/results"
for round in $(seq "$rounds"); do
  echo "bench-compare: round $round of $rounds" >&2
  validate tessera_mem 64; me fastify_mem 64
  validate tessera_sqlite 64; me fastify_sqlite 64
  validate tessera_mem 64; me express_mem 64
  validate tessera_sqlite 64; me express_sqlite 64
  validate tessera_mem 2048; me fastify_mem 2048
  if [[ $better_auth == 1 ]]; then
    validate tessera_sqlite 64; PATH_ME=/api/auth/get-session me betterauth_read 64
    refresh tessera_sqlite 32; PATH_ME=/api/auth/get-session me betterauth_write 32
    refresh tessera_sqlite 128; PATH_ME=/api/auth/get-session me betterauth_write 128
  else
    refresh tessera_sqlite 32; refresh tessera_sqlite 128
  fi
  if [[ -n $pg ]]; then
    validate tessera_pg 64; refresh tessera_pg 32; refresh tessera_pg 128
  fi
done

version() { node -p "require('$peers/node_modules/$1/package.json').version"; }
versions="fastify $(version fastify), @fastify/session $(version @fastify/session), express $(version express), express-session $(version express-session), better-sqlite3 $(version better-sqlite3), Node $(node --version)"
[[ -n $pg ]] && versions+=", PostgreSQL $("$TESSERA_TEST_PG_BIN/postgres" --version | awk '{print $NF}') (fsync on)"
[[ $better_auth == 1 ]] && versions+=", better-auth $(node -p "require('$peers/better-auth/node_modules/better-auth/package.json').version") (better-sqlite3 $(node -p "require('$peers/better-auth/node_modules/better-sqlite3/package.json').version"))"
tessera_version=$("$tessera" --version 2>/dev/null | head -1 || echo unknown)
machine="$(nproc) vCPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -r)"

PYTHONPATH="$here/scripts" /usr/bin/python3 - "$work/results" "$here/docs/benchmarks.md" "$duration" "$rounds" \
  "$machine" "$versions" "$tessera_version" <<'PY'
from doc_section import write_section
import datetime, statistics, sys
results, doc, duration, rounds, machine, versions, tversion = sys.argv[1:8]
runs = {}
for line in open(results):
    name, rps, p99, errs = line.split()
    runs.setdefault(name, []).append((float(rps), float(p99), int(errs)))

def rps(n): return statistics.median(r[0] for r in runs[n])
def p99(n): return statistics.median(r[1] for r in runs[n])
def errs(n): return sum(r[2] for r in runs[n])
def rounds_of(n): return " / ".join(f"{r[0]:,.0f}" for r in runs[n])

rows = []
def ratio(work, t, p, target=None):
    x = rps(t) / rps(p)
    met = "" if target is None else ("met" if x >= target else "**NOT met**")
    tgt = "" if target is None else f"≥ {target:g}×: {met}"
    rows.append(f"| {work} | {rps(t):,.0f} req/s ({rounds_of(t)}) | {p}: {rps(p):,.0f} req/s ({rounds_of(p)}) | {x:.2f}× | {tgt} |")

ratio("cookie check, 64 conns, memory", "tessera_mem@64", "fastify_mem@64")
ratio("cookie check, 64 conns, tessera SQLite FULL vs fastify memory", "tessera_sqlite@64", "fastify_mem@64", 5)
ratio("cookie check, 64 conns, SQLite FULL", "tessera_sqlite@64", "fastify_sqlite@64", 8)
ratio("cookie check, 64 conns, memory", "tessera_mem@64", "express_mem@64")
ratio("cookie check, 64 conns, SQLite FULL", "tessera_sqlite@64", "express_sqlite@64")
ratio("cookie check, 2,048 conns, memory", "tessera_mem@2048", "fastify_mem@2048")
def solo(work, t, target=None):  # a tessera row without a peer
    e = f", {errs(t)} errors" if errs(t) else ""
    tgt = "" if target is None else f"≥ {target:,} req/s: {'met' if rps(t) >= target and not errs(t) else '**NOT met**'}"
    rows.append(f"| {work} | {rps(t):,.0f} req/s ({rounds_of(t)}), p99 {p99(t):.2f} ms{e} | | | {tgt} |")

if "betterauth_read@64" in runs:
    ratio("cookie check, 64 conns, SQLite FULL (better-auth get-session)", "tessera_sqlite@64", "betterauth_read@64")
    ratio("write per call, 32 conns, SQLite FULL (tessera refresh, better-auth get-session updateAge 0)",
          "tessera_sqlite:refresh@32", "betterauth_write@32")
    ratio("write per call, 128 conns, SQLite FULL (tessera refresh, better-auth get-session updateAge 0)",
          "tessera_sqlite:refresh@128", "betterauth_write@128")
solo("refresh (rotation), 32 conns, SQLite FULL", "tessera_sqlite:refresh@32", 15000)
solo("refresh (rotation), 128 conns, SQLite FULL", "tessera_sqlite:refresh@128", 15000)
if "tessera_pg@64" in runs:
    solo("cookie check, 64 conns, PostgreSQL fsync on", "tessera_pg@64")
    solo("refresh (rotation), 32 conns, PostgreSQL fsync on", "tessera_pg:refresh@32")
    solo("refresh (rotation), 128 conns, PostgreSQL fsync on", "tessera_pg:refresh@128")
for n, limit in (("tessera_sqlite@64", 2), ("tessera_mem@64", 2), ("tessera_mem@2048", 50)):
    p = p99(n)
    rows.append(f"| p99, {n} | {p:.2f} ms | {n.replace('tessera', 'peer')}: see wrk runs | | ≤ {limit} ms: {'met' if p <= limit else '**NOT met**'} |")
for n in ("tessera_mem@2048", "fastify_mem@2048"):
    rows.append(f"| socket errors + non-2xx, {n} | {errs(n)} | | | none: {'met' if errs(n) == 0 else '**NOT met**'} |")
peers_p99 = ", ".join(f"{n} {p99(n):.2f} ms" for n in sorted(runs) if not n.startswith("tessera"))
table = ("| work | tessera | peer | ratio | target |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
         f"Peer p99 (median of rounds): {peers_p99}.\n")
print(table)
body = (f"Last run: {datetime.date.today()} — `make bench-compare` (wrk -t2, {duration} s per run, "
        f"{rounds} round(s) A B A B, median; wrk on the same cores). tessera: {tversion}. Peers: {versions}. "
        f"Machine: {machine}.\n\n{table}")
write_section(doc, "bench-compare", body)
PY

if [[ ${JWT:-1} == 1 ]]; then
  "$here/scripts/bench-compare-jwt.sh" "$build"
fi
