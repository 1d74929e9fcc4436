#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL 15 and Redis on loopback, each
# in a temporary directory on a free port, and stops them afterwards:
#   scripts/with-servers.sh ctest --test-dir build
# Tests run PostgreSQL with fsync off (faster, nothing to keep); set
# TESSERA_PG_FSYNC=on for benchmarks, where durability is what is measured.
# Exports TESSERA_TEST_POSTGRES_URL and TESSERA_TEST_REDIS_URL to the
# command, and TESSERA_REQUIRE_SERVERS=1 so that tests needing them fail
# (rather than skip) when they cannot reach them.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$pg_bin/initdb" ]] || { echo "with-servers: PostgreSQL server binaries not found (install-deps.sh servers)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "with-servers: redis-server not found (install-deps.sh servers)" >&2; exit 1; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

work=$(mktemp -d /tmp/tessera-servers-XXXXXX)
chmod 0755 "$work"
pg_port=$(free_port)
redis_port=$(free_port)

# PostgreSQL refuses to run as root: run it as the `postgres` user Debian's
# package creates, or as ourselves when we are not root.
as_pg=()
if [[ $(id -u) -eq 0 ]]; then as_pg=(runuser -u postgres --); fi
mkdir -p "$work/pg"
[[ ${#as_pg[@]} -gt 0 ]] && chown postgres "$work/pg"

cleanup() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [[ -f "$work/redis.pid" ]] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $pg_port -k $work/pg -c fsync=${TESSERA_PG_FSYNC:-off} -c max_connections=300" start >/dev/null \
  || { cat "$work/pg/server.log" >&2; exit 1; }

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --logfile "$work/redis.log" --dir "$work"
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

export TESSERA_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
export TESSERA_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
export TESSERA_TEST_PG_BIN="$pg_bin" TESSERA_TEST_PG_DATA="$work/pg/data"
export TESSERA_REQUIRE_SERVERS=1
echo "with-servers: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
"$@"
