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
print("\n| AccessVerifier | rate | baseline (same run) | rate | ratio |\n|---|---|---|---|---|")
for alg, base in (("EdDSA", "BM_RawOpenSslVerify/EdDSA"), ("ES256", "BM_RawOpenSslVerify/ES256"), ("HS256", "BM_RawHmacSha256_SigningInput")):
    for mode in ("nocache", "cache"):
        name = f"BM_AccessVerifier/{alg}_{mode}"
        print(f"| {alg}, cache {'on (hit)' if mode == 'cache' else 'off'} | {rate[name]/1e3:,.0f} k/s | {base} | {rate[base]/1e3:,.0f} k/s | {rate[name]/rate[base]:.2f} |")
l1 = rate["BM_AccessVerifier/EdDSA_cache_L1"]
print(f"| EdDSA, cache hit + L1 (in-process epoch hit) | {l1/1e3:,.0f} k/s | EdDSA, cache hit | {rate['BM_AccessVerifier/EdDSA_cache']/1e3:,.0f} k/s | {l1/rate['BM_AccessVerifier/EdDSA_cache']:.2f} |")
print(f"\nL1 on an in-process cache hit alone: {1e9/rate['BM_CachedEpochHit']:.0f} ns ({rate['BM_CachedEpochHit']/1e6:.1f} M/s)")
PY
sessions="$build/bench-sessions.json"
pgbench_out="$build/bench-pgbench.txt"
# PostgreSQL with fsync on, for the engine and for pgbench's simple-update
# (-N) baseline, one after the other in the same run.
TESSERA_PG_FSYNC=on scripts/with-servers.sh bash -c '
  set -euo pipefail
  TESSERA_BENCH_POSTGRES_URL=$TESSERA_TEST_POSTGRES_URL "$0/bench/tessera_sessions_bench" \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_min_time=0.5 --benchmark_out="$1" --benchmark_out_format=json
  pgbench -q -i -s 10 "$TESSERA_TEST_POSTGRES_URL" >/dev/null 2>&1
  for c in 1 32; do
    tps=$(pgbench -N -c $c -j 2 -T 10 -n "$TESSERA_TEST_POSTGRES_URL" 2>/dev/null | sed -n "s/^tps = \([0-9.]*\).*/\1/p")
    echo "pgbench_simple_update_c$c $tps"
  done >"$2"' "$build" "$sessions" "$pgbench_out"
/usr/bin/python3 - "$sessions" "$pgbench_out" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
med = {b["run_name"]: b for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
pgbench = dict(line.split() for line in open(sys.argv[2]) if len(line.split()) == 2)
rate = {k: b.get("items_per_second", 0) for k, b in med.items()}
def r(name): return rate[name]
def row(label, name, blabel, base, target=""):
    print(f"| {label} | {r(name)/1e3:,.1f} k/s | {blabel} | {r(base)/1e3:,.1f} k/s | {r(name)/r(base):.2f} | {target} |")
print("\n| tessera | rate | baseline (same run) | rate | ratio | target |\n|---|---|---|---|---|---|")
v = r("BM_ValidateSqlite")
row("validate (cookie, no write)", "BM_ValidateSqlite", "raw point lookup, autocommit", "BM_RawSqlitePointLookup/one_read_tx:0",
    ">= 100 k/s: " + ("met" if v >= 1e5 else "NOT met"))
row("validate (cookie, no write)", "BM_ValidateSqlite", "raw point lookup, one read tx", "BM_RawSqlitePointLookup/one_read_tx:1")
for full, level in ((1, "FULL"), (0, "NORMAL")):
    def n(bench, threads):
        return f"{bench}/full:{full}/real_time/threads:{threads}"
    raw1, raw32 = n("BM_RawRotateSqlite", 1), n("BM_RawRotateSqlite", 32)
    e1, e32 = n("BM_RenewSqlite", 1), n("BM_RenewSqlite", 32)
    s1, s32 = n("BM_StoreRotateSqlite", 1), n("BM_StoreRotateSqlite", 32)
    # The targets are for durable (FULL) renewals, where a commit waits for
    # the disk; NORMAL is reported beside them.
    def target(x, base, k):
        return f">= {k:.2f}: " + ("met" if r(x) >= k * r(base) else "NOT met") if full else ""
    row(f"renew, {level}, 1 caller", e1, "raw rotate, 1 caller", raw1, target(e1, raw1, 1))
    row(f"renew, {level}, 32 callers", e32, "raw rotate, 1 caller", raw1, target(e32, raw1, 3))
    row(f"renew, {level}, 32 callers", e32, "raw rotate, 32 callers", raw32)
    row(f"store rotate, {level}, 1 caller", s1, "raw rotate, 1 caller", raw1, target(s1, raw1, 1))
    row(f"store rotate, {level}, 32 callers", s32, "raw rotate, 1 caller", raw1, target(s32, raw1, 3))
    row(f"store rotate, {level}, 32 callers", s32, "raw rotate, 32 callers", raw32)
for c in (1, 32):
    name = f"BM_RenewPostgres/real_time/threads:{c}"
    base = float(pgbench.get(f"pgbench_simple_update_c{c}", "nan"))
    trips, cpu = med[name].get("round_trips_per_renew", float("nan")), med[name].get("client_cpu_us_per_renew", float("nan"))
    print(f"| renew on PostgreSQL, {c} caller(s) | {r(name)/1e3:,.2f} k/s | pgbench simple-update (-N), {c} client(s) | {base/1e3:,.2f} k tps | {r(name)/base:.2f} | {trips:.1f} round trips, {cpu:.0f} µs client CPU per renew |")
print("\n| size | cookie session | token session (3 refresh generations) |\n|---|---|---|")
for label, name in (("memory store, heap bytes per live session", "BM_MemoryStoreBytesPerSession"),
                    ("SQLite, file bytes per session", "BM_SqliteBytesPerSession")):
    c = med[f"{name}/token:0/iterations:1"]["bytes_per_session"]
    t = med[f"{name}/token:1/iterations:1"]["bytes_per_session"]
    print(f"| {label} | {c:,.0f} B | {t:,.0f} B |")
PY
