#!/usr/bin/env bash
# `make bench-scale`: cookie validate over HTTP with many sessions in the
# store. For each size of SIZES (SQLite) and of PG_SIZES (PostgreSQL, only
# when a server URL is known: TESSERA_POSTGRES_URL, or the
# TESSERA_TEST_POSTGRES_URL of scripts/with-servers.sh), seeds a fresh
# store through the library (bench/seed_sessions.cpp, not over HTTP; timed),
# starts a Release `tessera serve` on it as bench-http.sh does (SQLite
# FULL, access log off), warms up for WARMUP seconds, then runs wrk -t2
# -c64 validate for DURATION seconds round-robin over an even sample of the
# seeded tokens. Records req/s, p50, p99, non-2xx, store bytes per session
# (SQLite: db + -wal after a checkpoint; PostgreSQL: pg_total_relation_size
# of tessera's tables) and the seeding time and rate; prints a table and
# writes it into docs/benchmarks.md between the bench-scale markers
# (NO_DOC=1: not). Each size's store is deleted before the next (10 M
# sessions are several GB).
#   SIZES="10000 1000000 10000000" PG_SIZES="1000000" DURATION=10 WARMUP=2
#   SEED_THREADS (the seeder's --threads), SAMPLE (tokens wrk cycles over)
set -euo pipefail
build=${1:?usage: bench-scale.sh BUILD_DIR}
sizes=${SIZES:-10000 1000000 10000000}
pg_sizes=${PG_SIZES:-1000000}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
sample=${SAMPLE:-20000}
seed_threads=${SEED_THREADS:-}
pg_url=${TESSERA_POSTGRES_URL:-${TESSERA_TEST_POSTGRES_URL:-}}
tessera="$build/src/cli/tessera"
seed="$build/bench/tessera_seed"
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/bench-lib.sh"
for bin in "$tessera" "$seed"; do
  [[ -x "$bin" ]] || { echo "bench-scale: $bin not built" >&2; exit 1; }
done
work=$(mktemp -d /tmp/tessera-bench-scale-XXXXXX)
pg_db=
cleanup() {
  stop_serve
  [[ -n "$pg_db" ]] && psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

api_key="tsk_$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
hash=$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)

# url_with_db URL DB [QUERY]: URL naming database DB instead (and QUERY).
url_with_db() {
  /usr/bin/python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2], query=sys.argv[3] if len(sys.argv) > 3 else p.query)))' "$@"
}

rows="$work/rows.tsv"  # store sessions seed_s seed_rate bytes_per_session rps p50 p99 bad
: >"$rows"

# measure STORE N SERVE_ARGS...: seeds data dir $work/data (the seeder got
# its store by $seed_store), serves it, runs wrk, appends a row.
measure() {
  local store=$1 n=$2
  shift 2
  local data="$work/data" tokens="$work/tokens"
  echo "bench-scale: $store, $n sessions: seeding" >&2
  "$seed" --data-dir "$data" --sessions "$n" --sample "$sample" --sample-file "$tokens" \
    ${seed_threads:+--threads "$seed_threads"} ${seed_store:+--store "$seed_store"} >"$work/seed.txt"
  cat "$work/seed.txt" >&2
  local seed_s seed_rate
  seed_s=$(sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p' "$work/seed.txt")
  seed_rate=$(sed -n 's/.*sessions_per_s=\([0-9]*\).*/\1/p' "$work/seed.txt")
  local bytes
  if [[ $store == SQLite ]]; then
    sqlite3 "$data/tessera.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    bytes=$(($(stat -c %s "$data/tessera.db") + $(stat -c %s "$data/tessera.db-wal" 2>/dev/null || echo 0)))
  else
    bytes=$(psql -Atq "$seed_store" -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
      JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'public' AND c.relkind = 'r'")
  fi

  start_serve "$tessera" "$work" "$hash" --data-dir "$data" "$@"
  local base="http://127.0.0.1:$serve_port"
  echo "bench-scale: $store, $n sessions: wrk ${warmup} s warm-up, ${duration} s" >&2
  TOKENS="$tokens" API_KEY="$api_key" wrk -t2 -c64 -d"${warmup}s" \
    -s "$here/bench/http/validate.lua" "$base" >/dev/null
  TOKENS="$tokens" API_KEY="$api_key" wrk -t2 -c64 -d"${duration}s" --latency \
    -s "$here/bench/http/validate.lua" "$base" >"$work/wrk.txt"
  stop_serve
  local rps p50 p99 bad
  read -r rps p50 p99 bad < <(wrk_fields "$work/wrk.txt")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$n" "$seed_s" "$seed_rate" \
    "$((bytes / n))" "$rps" "$p50" "$p99" "$bad" >>"$rows"
  rm -rf "$data" "$tokens"
}

seed_store=
for n in $sizes; do
  measure SQLite "$n"
done

if [[ -n "$pg_url" ]]; then
  for n in $pg_sizes; do
    pg_db="tessera_scale_$n"
    psql -q "$pg_url" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $pg_db" \
      -c "CREATE DATABASE $pg_db" >/dev/null
    # Seeding may lose its last commits in a crash (synchronous_commit off);
    # serve runs at the server's own setting.
    seed_store=$(url_with_db "$pg_url" "$pg_db" "options=-c%20synchronous_commit%3Doff")
    measure PostgreSQL "$n" --store "$(url_with_db "$pg_url" "$pg_db")"
    psql -q "$pg_url" -c "DROP DATABASE $pg_db" >/dev/null
    pg_db=
  done
else
  echo "bench-scale: no PostgreSQL URL (run under scripts/with-servers.sh): SQLite only" >&2
fi

table="$work/table.md"
/usr/bin/python3 - "$rows" >"$table" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| store | sessions | seeding | seed rate | bytes/session | validate req/s | p50 | p99 | non-2xx |")
print("|---|---|---|---|---|---|---|---|---|")
for store, n, secs, rate, per, rps, p50, p99, bad in rows:
    print(f"| {store} | {int(n):,} | {float(secs):.1f} s | {int(rate):,}/s | {int(per):,} B "
          f"| {float(rps):,.0f} | {p50} | {p99} | {bad} |")
print()
for store in dict.fromkeys(r[0] for r in rows):
    mine = sorted((r for r in rows if r[0] == store), key=lambda r: int(r[1]))
    if len(mine) < 2:
        continue
    small, large = mine[0], mine[-1]
    drop = 100 * (1 - float(large[5]) / float(small[5]))
    print(f"{store}: validate req/s from {int(small[1]):,} to {int(large[1]):,} sessions: "
          f"{'−' if drop >= 0 else '+'}{abs(drop):.1f} % (target: a drop of at most 25 % at 10,000,000).")
PY
cat "$table"

[[ -n "${NO_DOC:-}" ]] && exit 0
# shellcheck disable=SC2086 # a list of words
largest=$(printf '%s\n' $sizes | sort -n | tail -1)
PYTHONPATH="$here/scripts" /usr/bin/python3 - "$here/docs/benchmarks.md" "$table" "$duration" \
  "$(machine_description)" "$largest" "$sizes" "${pg_url:+$pg_sizes}" <<'PY'
from doc_section import write_section
import datetime, sys
doc, table, duration, machine, largest, sizes, pg_sizes = sys.argv[1:8]
smoke = ""
if int(largest) < 10_000_000:
    smoke = (f"**Smoke run** (SIZES=\"{sizes}\", PG_SIZES=\"{pg_sizes}\", DURATION={duration}): "
             f"it shows the pipeline works end to end; it is not the 10 M measurement.\n\n")
body = (f"{smoke}Last run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — "
        f"`make bench-scale` (Release, SQLite FULL, access log off, wrk -t2 -c64, {duration} s "
        f"validate per size, wrk on the same cores). Machine: {machine}.\n\n{open(table).read()}")
write_section(doc, "bench-scale", body)
PY
