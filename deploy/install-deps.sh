#!/bin/sh
# install-deps.sh: installs the Debian 12 packages vigil builds, tests and runs with.
# Owns: the list of system packages. Must never: download anything but Debian packages.
# Usage: deploy/install-deps.sh [build|test]   (test adds the servers the suite starts)
set -eu
want="build-essential cmake pkg-config libyaml-dev libjsmn-dev libpaho-mqtt-dev libssl-dev librdkafka-dev libhiredis-dev"
case "${1:-build}" in
  test) want="$want check redis-server mosquitto mosquitto-clients openssl" ;;
  build) ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "vigil: missing Debian packages:$missing" >&2
  echo "vigil: run as root, or: sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "vigil: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
