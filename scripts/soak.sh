#!/usr/bin/env bash
# `make soak` (not in CI): SOAK_SECONDS (default 600) of mixed traffic
# (bench/http/soak.lua) against a Release `tessera serve` (SQLite FULL,
# access log off, as bench-http.sh starts it) at 70 % of the rate the same
# script reaches in a first 10 s run with no pause. The soak is consecutive
# 10 s wrk runs; after each one the server's RSS (VmRSS), its open fds and
# that window's p99 go into a CSV, and scripts/soak-plot.py turns it into
# docs/images/soak.svg and a summary table written into docs/benchmarks.md
# between the soak markers. Exits 1 when RSS or fds grew (the table says
# FAIL). NO_DOC=1 leaves docs/ alone.
set -euo pipefail
build=${1:?usage: soak.sh BUILD_DIR}
seconds=${SOAK_SECONDS:-600}
window=10
conns=64
load=0.70
tessera="$build/src/cli/tessera"
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/bench-lib.sh"
work=$(mktemp -d /tmp/tessera-soak-XXXXXX)
cleanup() {
  stop_serve
  rm -rf "$work"
}
trap cleanup EXIT

api_key="tsk_$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
hash=$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)
start_serve "$tessera" "$work" "$hash" --data-dir "$work/data" --trusted-proxies 127.0.0.1
base="http://127.0.0.1:$serve_port"
windows=$(((seconds + window - 1) / window))

# A refresh in flight when a window ends is answered to no one and its chain
# ends there: at most one per connection per window.
echo "soak: preparing sessions" >&2
/usr/bin/python3 "$here/bench/http/prepare.py" "$serve_port" "$api_key" cookie 20000 "$work/cookies"
/usr/bin/python3 "$here/bench/http/prepare.py" "$serve_port" "$api_key" token \
  $((conns * (windows + 4))) "$work/refresh"

run_window() {  # OUT DELAY_MS (empty: no pause)
  TOKENS="$work/cookies" REFRESH="$work/refresh" API_KEY="$api_key" HOST="127.0.0.1:$serve_port" \
    THREADS=2 DELAY_MS=$2 wrk -t2 -c"$conns" -d"${window}s" --latency -s "$here/bench/http/soak.lua" \
    "$base" >"$1"
}

# wrk's "2.93ms", "850.00us", "1.20s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    else if (v ~ /m$/) n *= 60000
    printf "%.3f", n }'
}

# Sets rss (KiB) and fds, once the server has closed the connections of the
# window that just ended: the fd count the same for 0.2 s (at most 2 s).
sample() {
  local prev=-1 same=0 list
  kill -0 "$serve_pid" 2>/dev/null || { echo "soak: serve exited:" >&2; cat "$work/serve.log" >&2; exit 1; }
  for _ in $(seq 40); do
    list=("/proc/$serve_pid/fd/"*)
    fds=${#list[@]}
    if [[ $fds -eq $prev ]]; then same=$((same + 1)); else same=0; fi
    [[ $same -ge 4 ]] && break
    prev=$fds
    sleep 0.05
  done
  rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$serve_pid/status")
}

echo "soak: measuring the maximum rate (${window} s, no pause)" >&2
run_window "$work/max.txt" ""
read -r max_rps _ _ max_bad < <(wrk_fields "$work/max.txt")
read -r target period < <(awk -v m="$max_rps" -v l="$load" -v c="$conns" \
  'BEGIN { t = m * l; printf "%.0f %.4f\n", t, c * 1000 / t }')
printf 'soak: max %.0f req/s (%s non-2xx); %s s at %s req/s: %s connections, one request per %s ms each\n' \
  "$max_rps" "$max_bad" "$seconds" "$target" "$conns" "$period" >&2
[[ "$max_bad" == 0 ]] || echo "soak: the maximum-rate run had non-2xx answers" >&2

csv="$work/soak.csv"
echo "t_s,rss_kib,fds,p99_ms,req_s,requests,non2xx,delay_ms" >"$csv"
sample
echo "0,$rss,$fds,,,,," >>"$csv"
# The pause between two requests of one connection is the period less the
# time a request took; that time is re-estimated after every window and the
# pause moved half way to the new value (the machine is shared: damped).
delay=$(awk -v p="$period" 'BEGIN { printf "%.4f", p * 0.7 }')
start=$EPOCHREALTIME
for ((w = 1; w <= windows; w++)); do
  out="$work/window-$w.txt"
  run_window "$out" "$delay"
  read -r rps _ p99 bad < <(wrk_fields "$out")
  requests=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in .*/\1/p' "$out")
  sample
  t=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  echo "$t,$rss,$fds,$(to_ms "$p99"),$rps,${requests:-0},$bad,$delay" >>"$csv"
  printf 'soak: %6s s  RSS %6.1f MiB  fds %3s  p99 %8s  %7.0f req/s  non-2xx %s\n' \
    "$t" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$fds" "$p99" "$rps" "$bad" >&2
  delay=$(awk -v p="$period" -v d="$delay" -v r="$rps" -v c="$conns" \
    'BEGIN { took = r > 0 ? c * 1000 / r - d : 0; n = (d + p - took) / 2; printf "%.4f", (n > 0 ? n : 0) }')
done

machine=$(machine_description)
table="$work/table.md"
svg="$work/soak.svg"
/usr/bin/python3 "$here/scripts/soak-plot.py" "$csv" "$svg" "$machine" "$max_rps" "$target" >"$table"
cat "$table"

if [[ -z "${NO_DOC:-}" ]]; then
  cp "$svg" "$here/docs/images/soak.svg"
  PYTHONPATH="$here/scripts" /usr/bin/python3 - "$here/docs/benchmarks.md" "$table" "$seconds" \
    "$machine" "$max_rps" "$max_bad" <<'PY'
from doc_section import write_section
import datetime, sys
doc, table, seconds, machine, max_rps, max_bad = sys.argv[1:7]
table = open(table).read()
body = (f"Last run: {datetime.date.today()} — `make soak SOAK_SECONDS={seconds}` (Release, "
        f"SQLite FULL, access log off, wrk -t2 -c64 on the same cores; maximum rate "
        f"{float(max_rps):,.0f} req/s with {max_bad} non-2xx). Machine: {machine}.\n\n"
        f"{table}\n![RSS, open fds and p99 over the soak](images/soak.svg)\n")
write_section(doc, "soak", body)
PY
fi
if grep -q '\*\*FAIL\*\*' "$table"; then
  echo "soak: FAIL: RSS or the open fds grew over the run" >&2
  exit 1
fi
