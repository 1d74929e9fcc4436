#!/usr/bin/env bash
# Installs the Debian 12 packages tessera needs to build, test, fuzz and
# benchmark. Idempotent: asks apt only for what dpkg says is missing.
# Works as root, or through sudo for a normal user.
set -euo pipefail

# What `make run` needs: the compilers and the libraries of the tessera
# binary. Everything else is a group, asked for by name.
packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libssl-dev libsqlite3-dev libpq-dev libhiredis-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcli11-dev libspdlog-dev libfmt-dev
)
# `install-deps.sh test servers`, `... proxies`, `... browser`, `... fuzz`, `... bench`, `... peers`, `... deb`, `... lint`.
for group in "$@"; do
  case "$group" in
    test) packages+=(libgtest-dev libgmock-dev libbenchmark-dev libjwt-dev
                     python3 python3-jwt python3-cryptography python3-yaml openssl sqlite3 curl)
          # The independent npm implementations of tests/interop/npm (webhooks, OAuth).
          command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm) ;;
    fuzz) packages+=(clang-19 libclang-rt-19-dev) ;;
    servers) packages+=(postgresql postgresql-client redis-server redis-tools) ;;
    bench) packages+=(wrk) ;;
    # The real proxies of tests/integration/test_proxies.py.
    proxies) packages+=(nginx-light caddy) ;;
    # The headless browser of the same test (with playwright-core from npm).
    browser) packages+=(chromium fonts-dejavu-core)
             command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm) ;;
    # The JWT verification peers of scripts/bench-compare-jwt.sh.
    peers) packages+=(python3 python3-jwt python3-cryptography libjwt-dev) ;;
    deb) packages+=(dpkg-dev python3 lintian systemd curl adduser man-db) ;;
    # node and npm for scripts/lint-openapi.sh; a node installed otherwise
    # (with its own npm) is kept, not fought with Debian's.
    lint) command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm) ;;
    *) echo "install-deps: unknown group '$group' (test, servers, proxies, browser, fuzz, bench, peers, deb, lint)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
