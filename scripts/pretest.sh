#!/bin/sh
# npm's pretest: installs the system programs the test suite drives for real,
# when they are missing. It never starts anything; the tests start their own
# redis-server processes on free loopback ports and their own headless Chromium.
#   redis-server  Redis tests (rate-limit store, fan-out, cluster mode)
#   chromium      browser test of the example page (driven by playwright-core)
set -eu

missing=
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-cli >/dev/null 2>&1 || missing="$missing redis-tools"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -z "$missing" ] && exit 0

echo "pretest: installing Debian packages:$missing (apt-get update && apt-get install -y$missing)" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "pretest: apt-get is not available; install$missing yourself and put them on PATH" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "pretest: not root and no sudo; cannot run apt-get" >&2; exit 1; }
  SUDO=sudo
fi
# shellcheck disable=SC2086 # $missing is a list of package names
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
for bin in redis-server redis-cli chromium; do
  command -v "$bin" >/dev/null 2>&1 || { echo "pretest: $bin is still not on PATH after apt-get" >&2; exit 1; }
done
echo "pretest: installed$missing" >&2
