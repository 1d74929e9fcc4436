#!/usr/bin/env bash
# Lints, installs, runs and removes the Debian packages that `make deb` made.
# Root only (it installs on this machine): CI runs it on its own machine.
#   scripts/check-deb.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check-deb.sh BUILD_DIR}
[[ $(id -u) -eq 0 ]] || { echo "check-deb: must run as root (it installs the packages)" >&2; exit 1; }
shopt -s nullglob
debs=("$build"/tessera_*.deb "$build"/libtessera-dev_*.deb)
[[ ${#debs[@]} -eq 2 ]] || { echo "check-deb: expected tessera and libtessera-dev packages in $build" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-deb-XXXXXX")
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  dpkg --purge tessera libtessera-dev >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for deb in "${debs[@]}"; do
  printf '%s: %s\n' "$(basename "$deb")" "$(du -h "$deb" | cut -f1) ($(dpkg-deb -f "$deb" Installed-Size) KiB installed)"
done

echo "--- lintian"
lintian --fail-on error --tag-display-limit 0 "${debs[@]}"

echo "--- install"
dpkg -i "${debs[@]}"
for f in /usr/bin/tessera /usr/share/man/man1/tessera.1.gz /etc/tessera/tessera.conf \
         /lib/systemd/system/tessera.service /usr/include/tessera/session_service.hpp; do
  [[ -e $f ]] || { echo "check-deb: $f is missing after install" >&2; exit 1; }
done
getent passwd tessera >/dev/null || { echo "check-deb: no tessera system user" >&2; exit 1; }
man -l /usr/share/man/man1/tessera.1.gz >/dev/null 2>&1 || zcat /usr/share/man/man1/tessera.1.gz | grep -q '^.TH TESSERA'

echo "--- systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/tessera.service

echo "--- run the installed binary with the packaged configuration"
# What systemd would do for the unit (StateDirectory, User), by hand: PID 1
# here is not systemd. Only the port is overridden, to a free one.
install -d -o tessera -g tessera -m 0700 /var/lib/tessera
ready=/var/lib/tessera/ready
(cd /var/lib/tessera && exec setpriv --reuid=tessera --regid=tessera --init-groups /usr/bin/tessera serve \
   --config /etc/tessera/tessera.conf --listen 127.0.0.1:0 --ready-file "$ready") >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do [[ -s $ready ]] && break; sleep 0.1; done
[[ -s $ready ]] || { echo "check-deb: serve did not start"; cat "$work/err"; exit 1; }
port=$(cat "$ready")
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
key=$(grep -o 'tsk_[A-Za-z0-9_-]*' "$work/out" | head -1)
[[ -n $key ]] || { echo "check-deb: no first-start API key in the output" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/sessions" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"subject":"alice","mode":"token"}')
[[ $code == 201 ]] || { echo "check-deb: issue answered $code, not 201" >&2; exit 1; }
mode=$(stat -c %a /var/lib/tessera/keys/signing.jwks)
[[ $mode == 600 ]] || { echo "check-deb: signing.jwks is mode $mode" >&2; exit 1; }
kill -TERM "$pid"
status=0; wait "$pid" || status=$?
pid=
[[ $status -eq 0 ]] || { echo "check-deb: serve exited $status on SIGTERM, not 0" >&2; cat "$work/err"; exit 1; }
echo "served /healthz and an issue on port $port, then stopped cleanly"

echo "--- remove and purge"
dpkg --purge tessera libtessera-dev
for f in /usr/bin/tessera /etc/tessera/tessera.conf /usr/include/tessera /var/lib/tessera; do
  [[ ! -e $f ]] || { echo "check-deb: $f is still there after purge" >&2; exit 1; }
done
echo "check-deb: ok"
