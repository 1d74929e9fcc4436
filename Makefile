# tessera — the front door. `make test` is all the set-up a newcomer needs.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 10000000
CMAKE_FLAGS ?=

.PHONY: all deps deps-test deps-deb deb check-deb build run test lint-api asan tsan fuzz fuzz-long fuzz-build bench bench-http bench-compare bench-compare-jwt bench-scale bench-events soak format tidy clean

all: build

# What the tessera binary needs, and no more (no database server, no test tools).
deps:
	@scripts/install-deps.sh

# Everything the tests use, PostgreSQL and Redis servers included.
deps-test:
	@scripts/install-deps.sh test servers proxies browser

build: deps-test
	cmake -S . -B build -G Ninja -DTESSERA_TESTS=ON -DTESSERA_BENCH=ON -DTESSERA_EXAMPLES=ON $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

# The authority on 127.0.0.1:8080 in dev mode, data under ./var/. The first
# start prints an API key and a curl line to try it with. Builds only the
# tessera binary; a build/ that `make test` configured is reused as it is.
run: deps
	@[[ -f build/CMakeCache.txt ]] || cmake -S . -B build -G Ninja -DTESSERA_TESTS=OFF -DTESSERA_BENCH=OFF -DTESSERA_EXAMPLES=OFF $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS) --target tessera
	build/src/cli/tessera serve

# Tests run beside a throwaway PostgreSQL and Redis (scripts/with-servers.sh).
test: build
	scripts/with-servers.sh ctest --test-dir build --output-on-failure --no-tests=error -j $(JOBS)

# docs/openapi.yaml through Redocly's recommended-strict ruleset (the pinned
# linter installs itself under build/tools/ on first use; needs the network once).
lint-api:
	@scripts/install-deps.sh lint
	scripts/lint-openapi.sh

# ASan+UBSan build of the library and every test.
asan: deps-test
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTESSERA_SANITIZE=address -DTESSERA_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/with-servers.sh ctest --test-dir build-asan --output-on-failure --no-tests=error -j $(JOBS)

# TSan build; runs the tests labelled "concurrency".
tsan: deps-test
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_SANITIZE=thread -DTESSERA_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-tsan -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  scripts/with-servers.sh ctest --test-dir build-tsan --output-on-failure --no-tests=error -j $(JOBS) -L concurrency

fuzz-build:
	@scripts/install-deps.sh fuzz
	CC=clang-19 CXX=clang++-19 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_jws_verify fuzz_jwk_parse fuzz_token_parse fuzz_http

# Runs every libFuzzer target for FUZZ_SECONDS each, seeded from tests/fuzz/corpus.
fuzz: fuzz-build
	scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

# Not in CI: every target for FUZZ_RUNS executions (10 M), however long it takes.
fuzz-long: fuzz-build
	scripts/run-fuzzers.sh build-fuzz 0 $(FUZZ_RUNS)

# Debian packages (tessera, libtessera-dev) from a Release build with
# Debian's hardening flags and no debug info (no -dbgsym packages; the
# static libraries of libtessera-dev stay small), into build-deb/; check-deb lints, installs, runs
# and removes them (root: it installs on this machine).
deb: deps-deb
	CXXFLAGS="$$(dpkg-buildflags --get CXXFLAGS) $$(dpkg-buildflags --get CPPFLAGS) -g0" LDFLAGS="$$(dpkg-buildflags --get LDFLAGS)" \
	  cmake -S . -B build-deb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DTESSERA_TESTS=OFF -DTESSERA_BENCH=OFF -DTESSERA_EXAMPLES=OFF $(CMAKE_FLAGS)
	cmake --build build-deb -j $(JOBS)
	cd build-deb && cpack -G DEB

check-deb: deb
	scripts/check-deb.sh build-deb

deps-deb:
	@scripts/install-deps.sh deb

bench: deps-test
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS)
	scripts/run-benchmarks.sh build-release

# HTTP load (not in CI): wrk against validate, refresh and JWKS; writes the
# figures into docs/benchmarks.md.
bench-http: deps-test
	@scripts/install-deps.sh bench
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS)
	scripts/bench-http.sh build-release

# The outbox (not in CI): delivery lag under load and the backlog drain rate,
# against a Release serve and a private redis-server; into docs/benchmarks.md.
bench-events: deps-test
	@scripts/install-deps.sh bench
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS) --target tessera
	/usr/bin/python3 bench/events/bench_events.py build-release/src/cli/tessera

# Not in CI: SOAK_SECONDS (600) of mixed traffic at 70 % of the rate measured
# at the start; RSS, open fds and p99 every 10 s into docs/images/soak.svg and
# docs/benchmarks.md. Fails when RSS or the fd count grows over the run.
soak: deps-test
	@scripts/install-deps.sh bench
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS) --target tessera
	scripts/soak.sh build-release

# Cookie validate over HTTP with many sessions in the store (not in CI):
# seeds 10 k, 1 M and 10 M SQLite sessions and 1 M PostgreSQL ones through
# the library (bench/seed_sessions.cpp), then wrk against serve for each;
# into docs/benchmarks.md. SIZES, PG_SIZES and DURATION override, e.g.
# SIZES="10000 1000000" PG_SIZES=100000 DURATION=5 for a smoke run. The
# 10 M store takes several GB in the temporary directory while it is measured.
bench-scale: deps-test
	@scripts/install-deps.sh bench
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF -DTESSERA_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS) --target tessera tessera_seed
	scripts/with-servers.sh scripts/bench-scale.sh build-release

# tessera beside peer session frameworks (bench/peers/), A B A B (not in CI;
# ROUNDS and DURATION override, e.g. DURATION=2 ROUNDS=1 for a smoke run).
bench-compare: deps-test
	@scripts/install-deps.sh bench peers
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS)
	scripts/bench-compare.sh build-release

# JWT verification beside raw OpenSSL, libjwt, fast-jwt, jose and PyJWT
# (bench/peers/jwt/; single thread; ROUNDS, WARMUP and WINDOW override).
bench-compare-jwt: deps-test
	@scripts/install-deps.sh bench peers
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-release -j $(JOBS) --target tessera_core_bench
	scripts/bench-compare-jwt.sh build-release

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

tidy: build
	git ls-files 'src/*.cpp' | xargs clang-tidy -p build --quiet

clean:
	rm -rf build build-asan build-tsan build-fuzz build-release build-deb
