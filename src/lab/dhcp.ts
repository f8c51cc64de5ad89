// DHCP in the lab: a dnsmasq server in each provider namespace and the router's
// client (dhclient, dhcpcd or udhcpc). Every file they write lives in the lab's
// state dir; nothing touches the host's /etc, /var/lib or /run.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { udhcpcLeaseScript } from '../facts/udhcpc';
import type { Ipv4 } from '../model/types';
import { UplinkdError } from '../errors';
import { inNs, ipJson, waitFor } from './exec';
import { PROVIDER_CUSTOMER_IF, type LabDhcpClient, type Provider } from './topology';

/** Starts dnsmasq (DHCP only, `--port=0`) on the provider's customer interface; it daemonizes. */
export async function startDhcpServer(ns: string, provider: Provider, stateDir: string, leaseSeconds = 3600): Promise<void> {
  const base = path.join(stateDir, `dnsmasq.${provider.name}`);
  const mask = prefixToMask(provider.prefixlen);
  await inNs(ns, 'dnsmasq', [
    '--conf-file=/dev/null',
    '--port=0', // no DNS: also keeps a DNS-server option (and resolv.conf rewrites) out of the lease
    `--interface=${PROVIDER_CUSTOMER_IF}`,
    '--bind-interfaces',
    '--dhcp-authoritative',
    '--no-ping', // no ICMP check before offering a new address: it delays each first lease by seconds
    `--dhcp-range=${provider.dhcpRange[0]},${provider.dhcpRange[1]},${mask},${leaseSeconds}`,
    `--dhcp-option=option:router,${provider.gateway}`,
    `--dhcp-leasefile=${base}.leases`,
    `--pid-file=${base}.pid`,
    `--log-facility=${base}.log`,
    '--log-dhcp',
    '--user=root',
  ]);
}

/** Glob of the lease files the router's client writes, for uplinkd's `paths.leases`. */
export function leaseGlob(client: LabDhcpClient, stateDir: string): string {
  switch (client) {
    case 'dhclient':
      return path.join(stateDir, 'dhclient.*.leases');
    case 'dhcpcd':
      return path.join(stateDir, 'dhcpcd', '*.lease');
    case 'udhcpc':
      return path.join(stateDir, 'udhcpc', '*.lease');
  }
}

export function leaseFile(client: LabDhcpClient, stateDir: string, ifname: string): string {
  return leaseGlob(client, stateDir).replace('*', ifname);
}

/** Starts the router's DHCP client on `ifname` and waits until the interface has a global address. */
export async function startDhcpClient(ns: string, client: LabDhcpClient, ifname: string, stateDir: string): Promise<Ipv4> {
  switch (client) {
    case 'dhclient':
      await startDhclient(ns, ifname, stateDir);
      break;
    case 'dhcpcd':
      await startDhcpcd(ns, ifname, stateDir);
      break;
    case 'udhcpc':
      await startUdhcpc(ns, ifname, stateDir);
      break;
  }
  return waitFor(`a DHCP address on ${ifname} in ${ns} (${client})`, () => globalAddress(ns, ifname), 30_000);
}

async function startDhclient(ns: string, ifname: string, stateDir: string): Promise<void> {
  // Ask for no DNS/domain options: dhclient-script would write a temp file next to /etc/resolv.conf (the host's /etc).
  const conf = path.join(stateDir, 'dhclient.conf');
  await fs.writeFile(conf, 'timeout 20;\nretry 2;\nrequest subnet-mask, broadcast-address, routers, interface-mtu;\n');
  await inNs(ns, 'dhclient', [
    '-4',
    '-v',
    '-cf', conf,
    '-lf', leaseFile('dhclient', stateDir, ifname),
    '-pf', path.join(stateDir, `dhclient.${ifname}.pid`),
    ifname,
  ], { timeoutMs: 30_000 });
}

async function startDhcpcd(ns: string, ifname: string, stateDir: string): Promise<void> {
  // dhcpcd has fixed paths (/var/lib/dhcpcd, /run/dhcpcd). `ip netns exec` already gives the
  // process a private mount namespace, so bind the lab's lease dir over /var/lib/dhcpcd and a
  // fresh tmpfs over /run for this process only; the host's directories stay untouched.
  const dir = path.join(stateDir, 'dhcpcd');
  await fs.mkdir(dir, { recursive: true });
  // The config sits in the lease dir: the tmpfs over /run hides the state dir from dhcpcd.
  await fs.writeFile(
    path.join(dir, 'dhcpcd.conf'),
    [
      'ipv4only',
      'noipv4ll',
      'noarp',
      // the hostname hook would rename the host (UTS is not namespaced here); resolv.conf and NTP are not wanted
      'nohook resolv.conf, hostname, ntp-common.conf, chrony.conf, timesyncd.conf, openntpd.conf',
      'timeout 20',
      '',
    ].join('\n'),
  );
  await inNs(ns, 'sh', [
    '-c',
    'mount --bind "$1" /var/lib/dhcpcd && mount -t tmpfs uplinkd-lab /run && exec dhcpcd -4 -w -f /var/lib/dhcpcd/dhcpcd.conf "$2"',
    'sh', dir, ifname,
  ], { timeoutMs: 30_000 });
}

async function startUdhcpc(ns: string, ifname: string, stateDir: string): Promise<void> {
  // udhcpc keeps no lease file: the script from src/facts records one, then runs Debian's default script.
  const dir = path.join(stateDir, 'udhcpc');
  await fs.mkdir(dir, { recursive: true });
  const script = path.join(stateDir, 'udhcpc.script');
  await fs.writeFile(script, udhcpcLeaseScript(dir, '/etc/udhcpc/default.script'), { mode: 0o755 });
  await inNs(ns, 'udhcpc', [
    '-i', ifname,
    '-s', script,
    '-p', path.join(stateDir, `udhcpc.${ifname}.pid`),
    '-n', '-t', '10', '-T', '1', '-A', '1',
  ], { timeoutMs: 30_000 });
}

interface IpAddrJson {
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

/** The interface's first global IPv4 address, or undefined. */
export async function globalAddress(ns: string, ifname: string): Promise<Ipv4 | undefined> {
  const links = await ipJson<IpAddrJson>(ns, ['-4', 'addr', 'show', 'dev', ifname]);
  const a = links.flatMap((l) => l.addr_info ?? []).find((x) => x.family === 'inet' && x.scope === 'global');
  return a?.local;
}

function prefixToMask(prefixlen: number): string {
  if (!Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > 32) throw new UplinkdError('lab', `bad prefix length ${prefixlen}`);
  const bits = prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}
