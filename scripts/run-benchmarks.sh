#!/usr/bin/env bash
# Runs the micro-benchmarks in BUILD_DIR (3 repetitions, medians) and prints
# each tessera figure as a ratio to its baseline measured in the same run.
set -euo pipefail
build=${1:?usage: run-benchmarks.sh BUILD_DIR}
out="$build/bench-core.json"
"$build/bench/tessera_core_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 --benchmark_out="$out" --benchmark_out_format=json
/usr/bin/python3 - "$out" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
rate = {b["run_name"]: b["items_per_second"] for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
def row(name, base, target=None):
    r = rate[name] / rate[base]
    print(f"| {name} | {rate[name]/1e3:,.0f} k/s | {base} | {rate[base]/1e3:,.0f} k/s | {r:.2f} |" + (f" {target} |" if target else " |"))
print("\n| tessera | rate | baseline | rate | ratio | target |\n|---|---|---|---|---|---|")
row("BM_LookupKeyDerive", "BM_RawHmacSha256_ReusedCtx", "≥ 2 M/s: " + ("met" if rate["BM_LookupKeyDerive"] >= 2e6 else "NOT met"))
row("BM_TesseraVerify/HS256", "BM_RawHmacSha256_SigningInput", "≥ 800 k/s: " + ("met" if rate["BM_TesseraVerify/HS256"] >= 8e5 else "NOT met"))
row("BM_TesseraVerify/HS256", "BM_LibjwtVerify_HS256", "peer libjwt 1.10")
row("BM_TesseraVerify/EdDSA", "BM_RawOpenSslVerify/EdDSA", "≥ 0.90: " + ("met" if rate["BM_TesseraVerify/EdDSA"] >= 0.9 * rate["BM_RawOpenSslVerify/EdDSA"] else "NOT met"))
row("BM_TesseraVerify/ES256", "BM_RawOpenSslVerify/ES256", "≥ 0.90: " + ("met" if rate["BM_TesseraVerify/ES256"] >= 0.9 * rate["BM_RawOpenSslVerify/ES256"] else "NOT met"))
row("BM_RawHmacSha256_ReusedCtx", "BM_RawHmacSha256_OneShot", "why contexts are fetched once")
PY
sessions="$build/bench-sessions.json"
"$build/bench/tessera_sessions_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 --benchmark_out="$sessions" --benchmark_out_format=json
/usr/bin/python3 - "$sessions" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
rate = {b["run_name"]: b["items_per_second"] for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
v, raw = rate["BM_ValidateSqlite"], rate["BM_RawSqlitePointLookup"]
print(f"\n| validate on SQLite | {v/1e3:,.0f} k/s | raw indexed point lookup | {raw/1e3:,.0f} k/s | {v/raw:.2f} | >= 100 k/s: {'met' if v >= 1e5 else 'NOT met'} |")
PY
