# shellcheck shell=bash
# Sourced by the HTTP benchmark scripts (bench-http.sh, bench-scale.sh):
# the server they measure, the figures of one `wrk --latency` run, the
# machine line of their tables.

# start_serve TESSERA WORK_DIR API_KEY_HASH [serve args...]: a `tessera
# serve` on a free loopback port (SQLite FULL unless the args say
# otherwise, access log and audit log off, no per-client connection cap:
# every wrk connection comes from 127.0.0.1), its log in WORK_DIR/serve.log.
# Sets serve_pid and serve_port once it listens; stop_serve ends it.
start_serve() {
  local tessera=$1 work=$2 hash=$3
  shift 3
  rm -f "$work/port"
  TESSERA_API_KEY_HASHES="sha256:$hash" "$tessera" serve --listen 127.0.0.1:0 \
    --ready-file "$work/port" --access-log false --audit-log none \
    --max-sessions-per-subject 1000 --refresh-grace 10s --max-connections-per-client 0 \
    "$@" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 600); do [[ -s "$work/port" ]] && break; sleep 0.05; done
  [[ -s "$work/port" ]] || { echo "serve did not start:" >&2; cat "$work/serve.log" >&2; return 1; }
  # shellcheck disable=SC2034 # read by the sourcing script
  serve_port=$(cat "$work/port")
}

stop_serve() {
  [[ -n "${serve_pid:-}" ]] || return 0
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=
}

#   wrk_fields FILE  → "req/s p50 p99 non-2xx" on one line
# non-2xx comes from the line bench/http/*.lua print in done() ("non-2xx:
# N"), else from wrk's own "Non-2xx or 3xx responses: N", else 0.
wrk_fields() {
  local out=$1 rps p50 p99 bad
  rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  bad=$(sed -n 's/^non-2xx: \([0-9]*\)/\1/p' "$out" | tail -1)
  [[ -z "$bad" ]] && bad=$(sed -n 's/^[[:space:]]*Non-2xx or 3xx responses: \([0-9]*\)/\1/p' "$out")
  printf '%s %s %s %s\n' "${rps:-0}" "${p50:--}" "${p99:--}" "${bad:-0}"
}

# The machine as the tables name it: "2 vCPUs (CPU model), kernel".
machine_description() {
  printf '%s vCPUs (%s), %s\n' "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)"
}
