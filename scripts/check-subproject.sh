#!/usr/bin/env bash
# tessera as a dependency (add_subdirectory, as FetchContent does it), in the
# smallest build: no PostgreSQL, no Redis, no command. Checks that only the
# libraries are configured (no tests, benchmarks, examples, CLI or install
# rules by default) and that a program links tessera::sessions against them.
#   scripts/check-subproject.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:?usage: check-subproject.sh SOURCE_DIR}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-subproject-XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(uses_tessera LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 23)
set(TESSERA_POSTGRES OFF CACHE BOOL "" FORCE)
set(TESSERA_REDIS OFF CACHE BOOL "" FORCE)
add_subdirectory("$src" tessera)
foreach(t tessera tessera_cli tessera_server tessera_unit_tests tessera_core_bench resource_service
          tessera_postgres tessera_redis)
  if(TARGET \${t})
    message(FATAL_ERROR "a subproject build made the target \${t}")
  endif()
endforeach()
foreach(v TESSERA_TESTS TESSERA_BENCH TESSERA_EXAMPLES TESSERA_CLI TESSERA_INSTALL)
  if(\${v})
    message(FATAL_ERROR "\${v} defaults on in a subproject build")
  endif()
endforeach()
add_executable(app app.cpp)
target_link_libraries(app PRIVATE tessera::sessions)
CM
cat >"$work/app.cpp" <<'CPP'
#include <tessera/memory_store.hpp>
#include <tessera/session_service.hpp>
#include <tessera/version.hpp>

#include <iostream>

int main() {
  auto store = tessera::make_memory_store();
  std::cout << "tessera " << tessera::kVersion << " as a subproject: "
            << (tessera::SessionPolicy{}.validate() ? "ok" : "policy refused") << '\n';
  return store ? 0 : 1;
}
CPP
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$work" -B "$work/build" "${generator[@]}" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" --target app -j "$(nproc)" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/app"
echo "check-subproject: ok"
