#!/usr/bin/env bash
# Installs a configured and built tessera tree into a temporary prefix, then
# builds examples/embedded against that prefix alone (find_package, not the
# build tree) and runs it; also checks the pkg-config files resolve and link.
#   scripts/check-install.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check-install.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
echo "installed $(find "$prefix" -type f | wc -l) files under the prefix"
for f in lib/cmake/tessera/tesseraConfig.cmake lib/cmake/tessera/tesseraConfigVersion.cmake \
         include/tessera/version.hpp include/tessera/session_service.hpp; do
  [[ -f $prefix/$f ]] || { echo "check-install: $f was not installed" >&2; exit 1; }
done
if find "$prefix" -path '*/include/*' -name '*.hpp' -exec grep -l '"core/' {} + | grep -q .; then
  echo "check-install: an installed header includes a private src/ header" >&2; exit 1
fi

# find_package from the prefix only: no path to the source or build tree.
cmake -S "$src/examples/embedded" -B "$work/embedded" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/embedded" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/embedded/embedded_sessions" "$work/data"

# A version this package does not satisfy must not be found.
mkdir -p "$work/too-new"
cat >"$work/too-new/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(too_new LANGUAGES CXX)
find_package(tessera 0.3 CONFIG QUIET)
if(tessera_FOUND)
  message(FATAL_ERROR "tessera 0.3 was found in a 0.2 installation")
endif()
CM
cmake -S "$work/too-new" -B "$work/too-new/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null

# pkg-config: every component's file resolves, and a program links with it.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig
pkg-config --exists --print-errors tessera tessera-sessions tessera-verify
cat >"$work/pc.cpp" <<'CPP'
#include <tessera/session_service.hpp>
#include <tessera/version.hpp>
#include <iostream>
int main() {
  // A call into the library, so that linking is tested, not only the headers.
  if (!tessera::SessionPolicy{}.validate()) return 1;
  std::cout << "pkg-config build of tessera " << tessera::kVersion << '\n';
}
CPP
# shellcheck disable=SC2046
c++ -std=c++23 "$work/pc.cpp" -o "$work/pc" $(pkg-config --cflags --libs tessera-sessions)
"$work/pc"
echo "check-install: ok"
