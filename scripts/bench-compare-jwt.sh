#!/usr/bin/env bash
# `make bench-compare-jwt`: JWT verification of tessera beside its peers in
# one run: raw OpenSSL and libjwt (in bench/core_bench.cpp), fast-jwt without
# and with its verified-token cache, jose (bench/peers/jwt/) and PyJWT.
# Single thread each; per round tessera's benchmarks, then every peer (A B A
# B); ROUNDS rounds (default 3), WARMUP seconds (default 0.5) then WINDOW
# seconds (default 2.5) per measurement, median of the rounds. The peers stop
# at WINDOW; Google Benchmark runs at least WINDOW (about 1.4× once its trial
# runs are counted), which keeps the whole run under five minutes. Prints a table
# and writes it into docs/benchmarks.md between the bench-compare-jwt
# markers (NO_DOC=1 skips that). Quick smoke run: WINDOW=0.3 WARMUP=0.1 ROUNDS=1.
set -euo pipefail
build=${1:?usage: bench-compare-jwt.sh BUILD_DIR}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-0.5}
window=${WINDOW:-2.5}
here=$(cd "$(dirname "$0")/.." && pwd)
bench="$build/bench/tessera_core_bench"
peers="$here/bench/peers/jwt"
[[ -x $bench ]] || { echo "bench-compare-jwt: no $bench (configure with -DTESSERA_BENCH=ON)" >&2; exit 1; }
work=$(mktemp -d /tmp/tessera-bench-jwt-XXXXXX)
trap 'rm -rf "$work"' EXIT

[[ -d "$peers/node_modules" ]] || (cd "$peers" && npm ci --no-audit --no-fund >&2)

# One key per algorithm and one token signed with it, shared by the peers
# (tessera's benchmark signs the same shape of token with its own keys).
/usr/bin/python3 "$peers/make_tokens.py" "$work/tokens.json"

algs=(HS256 EdDSA ES256)
filter='^(BM_TesseraVerify/(HS256|EdDSA|ES256)|BM_RawHmacSha256_SigningInput|BM_RawOpenSslVerify/(EdDSA|ES256)|BM_LibjwtVerify_HS256|BM_AccessVerifier/(HS256|EdDSA|ES256)_cache)$'
: >"$work/results"
for round in $(seq "$rounds"); do
  echo "bench-compare-jwt: round $round of $rounds" >&2
  "$bench" --benchmark_filter="$filter" --benchmark_min_warmup_time="$warmup" \
    --benchmark_min_time="$window" --benchmark_format=json >"$work/core-$round.json" 2>"$work/core-$round.log"
  /usr/bin/python3 - "$work/core-$round.json" >>"$work/results" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("error_occurred"):
        raise SystemExit(f"bench-compare-jwt: {b['name']}: {b.get('error_message')}")
    print(b["name"], "-", f"{b['items_per_second']:.0f}")
PY
  for peer in fast-jwt fast-jwt-cache jose; do
    node "$peers/verify.mjs" "$work/tokens.json" "$peer" "$warmup" "$window" "${algs[@]}" >>"$work/results"
  done
  /usr/bin/python3 "$peers/verify_pyjwt.py" "$work/tokens.json" "$warmup" "$window" "${algs[@]}" >>"$work/results"
done

version() { node -p "require('$peers/node_modules/$1/package.json').version"; }
versions="Node $(node --version), fast-jwt $(version fast-jwt), jose $(version jose), PyJWT $(/usr/bin/python3 -c 'import jwt; print(jwt.__version__)'), libjwt $(pkg-config --modversion libjwt 2>/dev/null || echo unknown), $(openssl version | cut -d' ' -f1-2)"
machine="$(nproc) vCPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -r)"

NO_DOC=${NO_DOC:-0} PYTHONPATH="$here/scripts" /usr/bin/python3 - "$work/results" "$here/docs/benchmarks.md" "$rounds" "$warmup" "$window" \
  "$machine" "$versions" <<'PY'
from doc_section import write_section
import datetime, os, statistics, sys
results, doc, rounds, warmup, window, machine, versions = sys.argv[1:8]
runs = {}
for line in open(results):
    a, b, rate = line.split()
    runs.setdefault((a, b), []).append(float(rate))

def get(a, b="-"):
    return statistics.median(runs[(a, b)]) if (a, b) in runs else None

def cell(x):
    return "" if x is None else f"{x:,.0f}"

def rounds_of(a, b="-"):
    return " / ".join(f"{x:,.0f}" for x in runs.get((a, b), []))

rows = []
def row(label, tessera, raw, fj, fjc, jose, pyjwt, libjwt, versus, base, target):
    x = tessera / base
    met = "met" if x >= target else "**NOT met**"
    rows.append(f"| {label} | {cell(tessera)} | {cell(raw)} | {cell(fj)} | {cell(fjc)} | {cell(jose)} | "
                f"{cell(pyjwt)} | {cell(libjwt)} | {x:.2f}× {versus} (≥ {target:g}×) | {met} |")

for alg in ("HS256", "EdDSA", "ES256"):
    t = get(f"BM_TesseraVerify/{alg}")
    raw = get("BM_RawHmacSha256_SigningInput" if alg == "HS256" else f"BM_RawOpenSslVerify/{alg}")
    fj = get("fast-jwt", alg)
    others = (get("fast-jwt-cache", alg), get("jose", alg), get("pyjwt", alg),
              get("BM_LibjwtVerify_HS256") if alg == "HS256" else None)
    if alg == "HS256":
        row(f"{alg} verify", t, raw, fj, None, *others[1:], "fast-jwt", fj, 5)
    else:
        row(f"{alg} verify", t, raw, fj, None, *others[1:], "raw OpenSSL", raw, 0.95)
for alg in ("HS256", "EdDSA", "ES256"):
    t = get(f"BM_AccessVerifier/{alg}_cache")
    fjc = get("fast-jwt-cache", alg)
    row(f"{alg} cache hit", t, None, None, fjc, None, None, None, "fast-jwt cache", fjc, 5)

head = ("| alg | tessera | raw OpenSSL | fast-jwt | fast-jwt cache | jose | PyJWT | libjwt | ratio vs target | met? |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n")
detail = "; ".join(f"{a}{'' if b == '-' else ' ' + b}: {rounds_of(a, b)}" for a, b in sorted(runs))
table = head + "\n".join(rows) + f"\n\nVerifications per second, median of {rounds} round(s). Every round, per row: {detail}.\n"
print(table)
if os.environ["NO_DOC"] == "1":
    sys.exit(0)
body = (f"Last run: {datetime.date.today()} — `make bench-compare-jwt` "
        f"(`scripts/bench-compare-jwt.sh build-release`, {warmup} s warm-up then {window} s per measurement, "
        f"single thread, {rounds} round(s) tessera then peers, median). Versions: {versions}. "
        f"Machine: {machine}.\n\n{table}")
write_section(doc, "bench-compare-jwt", body)
PY
