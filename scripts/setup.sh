#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (as root): the Debian programs the lab and
# the tests drive for real, then the npm dependencies and the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  iproute2 nftables conntrack iputils-ping procps util-linux \
  dnsmasq-base isc-dhcp-client dhcpcd-base udhcpc systemd \
  user-mode-linux kmod ppp pppoe iptables socat \
  python3 make g++ \
  chromium \
  dpkg-dev binutils lintian man-db
npm ci
npm run build
