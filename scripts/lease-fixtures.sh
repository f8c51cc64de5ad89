#!/usr/bin/env bash
# Regenerates test/fixtures/leases: real lease files written by dhclient, dhcpcd, systemd-networkd
# and udhcpc (through udhcpcLeaseScript) against a real dnsmasq, in throwaway network and mount
# namespaces. Run as root after `npm run build`: bash scripts/lease-fixtures.sh
# Server modes (dnsmasq options; the server is 192.0.2.1 on a /24):
#   3        option 3 (router) 192.0.2.1 only
#   121      option 121 only (option 3 suppressed with an empty `dhcp-option=3`):
#            0.0.0.0/0 via 192.0.2.254, 198.18.0.0/15 via 192.0.2.253, 203.0.113.7/32 via 192.0.2.253
#   121+3    both: option 3 says 192.0.2.1, the classless default says 192.0.2.254 (RFC 3442: 121 wins)
#   249      Microsoft's classless option 249 only (forced: clients do not ask for it), same routes as 121
# The client's interface index is 2 in every run, so the networkd files are named 2.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$PWD/test/fixtures/leases"
TAG="u8l$(($$ % 1000))"
SRV="$TAG-s"
CLI="$TAG-c"
DIR="$(mktemp -d /tmp/$TAG-fixtures.XXXXXX)"
chmod 755 "$DIR"
ROUTES='0.0.0.0/0,192.0.2.254,198.18.0.0/15,192.0.2.253,203.0.113.7/32,192.0.2.253'
# RFC 3442 encoding of the same routes for option 249: width, significant octets, gateway.
MS_HEX='00:c0:00:02:fe:0f:c6:12:c0:00:02:fd:20:cb:00:71:07:c0:00:02:fd'

cleanup() {
  for ns in "$CLI" "$SRV"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

for ns in "$SRV" "$CLI"; do
  mkdir -p "/etc/netns/$ns"
  echo "# $ns" > "/etc/netns/$ns/resolv.conf"
  ip netns add "$ns"
done
ip link add s0 netns "$SRV" type veth peer name wan0 netns "$CLI"
ip -n "$SRV" addr add 192.0.2.1/24 dev s0
ip -n "$SRV" link set s0 up
ip -n "$CLI" link set lo up
ip -n "$CLI" link set wan0 up
[ "$(ip netns exec "$CLI" cat /sys/class/net/wan0/ifindex)" = 2 ] || { echo "wan0 is not ifindex 2" >&2; exit 1; }

ISOLATE="set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /run;"
in_client() { ip netns exec "$CLI" unshare --mount --uts sh -c "$ISOLATE $1" >>"$DIR/client.log" 2>&1 & echo $!; }
stop_client() {
  for pid in $(ip netns pids "$CLI"); do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in $(ip netns pids "$CLI"); do kill -9 "$pid" 2>/dev/null || true; done
  ip -n "$CLI" addr flush dev wan0
  ip -n "$CLI" route flush table main
}
wait_file() { for _ in $(seq 1 80); do [ -s "$1" ] && grep -q "$2" "$1" && return 0; sleep 0.25; done; echo "no lease in $1" >&2; tail "$DIR/client.log" >&2; exit 1; }

mkdir -p "$OUT"
for mode in 3 121 121+3 249; do
  case "$mode" in
    3) opts=(--dhcp-option=option:router,192.0.2.1) ;;
    121) opts=(--dhcp-option=3 "--dhcp-option=option:classless-static-route,$ROUTES") ;;
    121+3) opts=(--dhcp-option=option:router,192.0.2.1 "--dhcp-option=option:classless-static-route,$ROUTES") ;;
    249) opts=(--dhcp-option=3 "--dhcp-option-force=249,$MS_HEX") ;;
  esac
  ip netns exec "$SRV" dnsmasq --conf-file=/dev/null --port=0 --interface=s0 --bind-interfaces --dhcp-authoritative \
    --no-ping --dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,600 "${opts[@]}" \
    --dhcp-leasefile="$DIR/dnsmasq.leases" --pid-file="$DIR/dnsmasq.pid"
  name="${mode/+/-}"

  # dhclient with Debian's dhclient-script; the config declares and requests 121 and 249.
  cat > "$DIR/dhclient.conf" <<'EOF'
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
option ms-classless-static-routes code 249 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, rfc3442-classless-static-routes, ms-classless-static-routes;
EOF
  rm -f "$DIR/dhclient.leases"
  in_client "exec dhclient -4 -d -cf $DIR/dhclient.conf -lf $DIR/dhclient.leases -pf $DIR/dhclient.pid -sf /sbin/dhclient-script wan0" >/dev/null
  wait_file "$DIR/dhclient.leases" 'fixed-address'
  sleep 0.5
  cp "$DIR/dhclient.leases" "$OUT/dhclient-$name.leases"
  stop_client

  # dhcpcd (one-shot, IPv4), lease dir bound over /var/lib/dhcpcd; the config asks for 121 and 249
  # as Debian's /etc/dhcpcd.conf does for 121.
  rm -rf "$DIR/dhcpcd" && mkdir -p "$DIR/dhcpcd"
  printf 'option classless_static_routes\noption ms_classless_static_routes\n' > "$DIR/dhcpcd/dhcpcd.conf"
  in_client "mount --bind $DIR/dhcpcd /var/lib/dhcpcd; exec dhcpcd -f /var/lib/dhcpcd/dhcpcd.conf -c /bin/true -1 -4 -B wan0" >/dev/null
  wait_file "$DIR/dhcpcd/wan0.lease" ''
  sleep 0.5
  mkdir -p "$OUT/dhcpcd-$name"
  cp "$DIR/dhcpcd/wan0.lease" "$OUT/dhcpcd-$name/wan0.lease"
  stop_client

  # udhcpc with the uplinkd lease script (from the build); it asks for 121 only with -O staticroutes.
  rm -rf "$DIR/udhcpc"
  node -e "require('fs').writeFileSync('$DIR/udhcpc.script', require('./dist/src/facts/udhcpc.js').udhcpcLeaseScript('$DIR/udhcpc', '/etc/udhcpc/default.script'), { mode: 0o755 })"
  in_client "exec udhcpc -f -O staticroutes -O msstaticroutes -i wan0 -s $DIR/udhcpc.script" >/dev/null
  wait_file "$DIR/udhcpc/wan0.lease" 'ip='
  cp "$DIR/udhcpc/wan0.lease" "$OUT/udhcpc-$name.lease"
  stop_client

  # systemd-networkd: /sys read-only (no udev), its netif dir owned by systemd-network, no D-Bus.
  rm -rf "$DIR/netif" && mkdir -p "$DIR/netif/leases" "$DIR/netif/links" "$DIR/netif/lldp"
  chown -R systemd-network:systemd-network "$DIR/netif"
  printf '[Match]\nName=wan0\n\n[Network]\nDHCP=ipv4\n' > "$DIR/50-wan0.network"
  in_client "mount -o remount,bind,ro /sys; mkdir -p /run/systemd/network /run/systemd/netif; cp $DIR/50-wan0.network /run/systemd/network/; mount --bind $DIR/netif /run/systemd/netif; exec /lib/systemd/systemd-networkd" >/dev/null
  wait_file "$DIR/netif/leases/2" 'ADDRESS='
  mkdir -p "$OUT/networkd-$name"
  cp "$DIR/netif/leases/2" "$OUT/networkd-$name/2"
  stop_client

  kill "$(cat "$DIR/dnsmasq.pid")"
  sleep 0.3
done
echo "fixtures written to $OUT"
