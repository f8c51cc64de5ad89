// DHCP in the lab: a dnsmasq server in each provider namespace and the router's
// client (dhclient, dhcpcd, udhcpc or systemd-networkd). Every file they write lives in
// the lab's state dir; nothing touches the host's /etc, /var/lib or /run.
import { spawn } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { udhcpcLeaseScript } from '../src/facts/udhcpc';
import type { Ipv4 } from '../src/model/types';
import { UplinkdError } from '../src/errors';
import { inNs, ipJson, nsArgv, run, sleep, waitFor } from './exec';
import { PROVIDER_CUSTOMER_IF, type LabDhcpClient, type LabDhcpGateway, type Provider } from './topology';

/**
 * dnsmasq options that send the gateway as option 3, as option 121 only (option 3 suppressed), or both. `routes`
 * ("DST,VIA" each) go into option 121 before its default; with them option 121 is always sent, since a client then
 * ignores option 3 (RFC 3442).
 */
export function gatewayOptions(gateway: Ipv4, how: LabDhcpGateway, routes: string[] = []): string[] {
  const router = `--dhcp-option=option:router,${gateway}`;
  const classless = `--dhcp-option=option:classless-static-route,${[...routes, '0.0.0.0/0', gateway].join(',')}`;
  if (routes.length > 0 && how === 'router') return [router, classless];
  switch (how) {
    case 'router':
      return [router];
    case 'classless':
      return ['--dhcp-option=3', classless]; // an empty option 3: dnsmasq sends no router
    case 'both':
      return [router, classless];
  }
}

/** How a provider's DHCP server describes the link beyond its range. */
export interface DhcpServerOptions {
  /** Option 3, option 121 only, or both (default option 3). */
  gateway?: LabDhcpGateway;
  /** The gateway address sent (default the provider's): one outside the prefix makes an on-link gateway. */
  via?: Ipv4;
  /** Subnet mask sent in option 1 instead of the range's, e.g. 255.255.255.255 for a /32 address. */
  netmask?: string;
  /** More classless static routes, "DST,VIA" each (gatewayOptions). */
  classless?: string[];
}

/** Starts dnsmasq (DHCP only, `--port=0`) on the provider's customer interface; it daemonizes. */
export async function startDhcpServer(
  ns: string,
  provider: Provider,
  stateDir: string,
  leaseSeconds = 3600,
  opts: DhcpServerOptions = {},
): Promise<void> {
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
    ...gatewayOptions(opts.via ?? provider.gateway, opts.gateway ?? 'router', opts.classless),
    ...(opts.netmask ? [`--dhcp-option=option:netmask,${opts.netmask}`] : []),
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
    case 'networkd':
      return path.join(stateDir, 'networkd', 'netif', 'leases', '*');
  }
}

/** The lease file of `ifname` (networkd names it by the interface's index in `ns`). */
export async function leaseFile(ns: string, client: LabDhcpClient, stateDir: string, ifname: string): Promise<string> {
  if (client !== 'networkd') return leaseGlob(client, stateDir).replace('*', ifname);
  const index = (await inNs(ns, 'cat', [`/sys/class/net/${ifname}/ifindex`])).stdout.trim();
  return leaseGlob(client, stateDir).replace('*', index);
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
    case 'networkd':
      await startNetworkd(ns, ifname, stateDir);
      break;
  }
  return waitFor(`a DHCP address on ${ifname} in ${ns} (${client})`, () => globalAddress(ns, ifname), 30_000);
}

async function startDhclient(ns: string, ifname: string, stateDir: string): Promise<void> {
  // Ask for no DNS/domain options: dhclient-script would write a temp file next to /etc/resolv.conf (the host's /etc).
  const conf = path.join(stateDir, 'dhclient.conf');
  // Option 121 as Debian's dhclient.conf declares it; dhclient-script's rfc3442 hook installs its routes.
  await fs.writeFile(conf, [
    'option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;',
    'timeout 20;',
    'retry 2;',
    'request subnet-mask, broadcast-address, routers, interface-mtu, rfc3442-classless-static-routes;',
    '',
  ].join('\n'));
  await inNs(ns, 'dhclient', [
    '-4',
    '-v',
    '-cf', conf,
    '-lf', leaseGlob('dhclient', stateDir).replace('*', ifname),
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
    '-O', 'staticroutes', // option 121: busybox asks for it only when told
    '-p', path.join(stateDir, `udhcpc.${ifname}.pid`),
    '-n', '-t', '10', '-T', '1', '-A', '1',
  ], { timeoutMs: 30_000 });
}

/**
 * systemd-networkd 252 as the router's DHCP client, without systemd as PID 1 (the recipe of
 * docs/dhcp-clients.md): in a private mount namespace a tmpfs over /run/systemd, /sys read-only (else it
 * waits for udev), its .network files in /run/systemd/network and its state dir (owned by
 * systemd-network) over /run/systemd/netif. No D-Bus, so it cannot be told about a new .network
 * file: each DHCP uplink adds its file and restarts the one networkd of the namespace, which keeps
 * the other uplinks' leases and addresses (KeepConfiguration=yes). Foreign routes and rules (uplinkd's)
 * are left alone (ManageForeignRoutes=no, ManageForeignRoutingPolicyRules=no in a networkd.conf drop-in).
 */
async function startNetworkd(ns: string, ifname: string, stateDir: string): Promise<void> {
  const dir = path.join(stateDir, 'networkd');
  const netif = path.join(dir, 'netif');
  const networkDir = path.join(dir, 'network');
  const uid = Number((await run('id', ['-u', 'systemd-network'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'systemd-network'])).stdout.trim());
  for (const d of [dir, networkDir, netif, path.join(netif, 'leases'), path.join(netif, 'links'), path.join(netif, 'lldp')]) {
    await fs.mkdir(d, { recursive: true });
  }
  await fs.chmod(stateDir, 0o755); // networkd drops to systemd-network and must reach its directory
  await fs.chmod(dir, 0o755);
  for (const d of [netif, path.join(netif, 'leases'), path.join(netif, 'links'), path.join(netif, 'lldp')]) await fs.chown(d, uid, gid);
  await fs.writeFile(path.join(dir, 'uplinkd-lab.conf'), '[Network]\nManageForeignRoutes=no\nManageForeignRoutingPolicyRules=no\n');
  await fs.writeFile(path.join(networkDir, `50-${ifname}.network`),
    `[Match]\nName=${ifname}\n\n[Network]\nDHCP=ipv4\nKeepConfiguration=yes\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`);
  await stopNetworkd(stateDir);
  // The tmpfs goes over /run/systemd (and /run/dbus), not all of /run: the lab's state dir is
  // under /run and must stay visible. No D-Bus: the bus address points nowhere.
  const script = [
    'set -e',
    'mount --make-rprivate /',
    'mkdir -p /run/systemd',
    'mount -t tmpfs uplinkd-lab /run/systemd',
    'if [ -d /run/dbus ]; then mount -t tmpfs uplinkd-lab /run/dbus; fi',
    'export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/systemd/no-bus',
    'mount -o remount,bind,ro /sys',
    'mkdir -p /run/systemd/network /run/systemd/netif /run/systemd/networkd.conf.d',
    `cp ${networkDir}/*.network /run/systemd/network/`,
    `cp ${dir}/uplinkd-lab.conf /run/systemd/networkd.conf.d/`,
    `mount --bind ${netif} /run/systemd/netif`,
    `echo $$ > ${dir}/networkd.pid`,
    'exec /lib/systemd/systemd-networkd',
  ].join('; ');
  const log = openSync(path.join(dir, 'networkd.log'), 'a');
  try {
    const child = spawn('ip', nsArgv(ns, 'unshare', ['--mount', 'sh', '-c', script]), { detached: true, stdio: ['ignore', log, log] });
    child.unref();
  } finally {
    closeSync(log);
  }
}

/** Stops the lab's networkd, if it runs (SIGTERM, then SIGKILL after 5 s). */
export async function stopNetworkd(stateDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(path.join(stateDir, 'networkd', 'networkd.pid'), 'utf8')).trim());
  } catch {
    return;
  }
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 1) return;
  if (alive()) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  if (alive()) process.kill(pid, 'SIGKILL');
  await fs.rm(path.join(stateDir, 'networkd', 'networkd.pid'), { force: true });
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
