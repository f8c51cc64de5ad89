// Two real PPPoE uplinks (issue 9, scenario 2), for the full-kernel guest (this machine's kernel
// has no PPP). Each provider runs `pppoe-server` (package pppoe) on its customer Ethernet and
// hands out an address from its own pool with the SAME local (peer) address, 10.64.0.1, on both
// sessions, as two sessions to one carrier usually have; the router dials both with `pppd`
// (package ppp, plugin pppoe.so): ppp0 and ppp1, `inet A peer 10.64.0.1/32`, the first pppd's
// `default dev ppp0`.
//
//   lan host --- router if0 | eth1 ~~PPPoE~~ isp1 cust --- isp1 wan --- inet (192.0.2.80)
//                           | eth2 ~~PPPoE~~ isp2 cust --- isp2 wan ---/
//
// Providers check the source of what arrives from a session (strict rp_filter and a filter rule);
// the router masquerades the LAN out of ppp+. Namespaces and the state dir are the lab's, so
// labDown(prefix) removes this world too.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { renderLabConfig } from './config';
import { inNs, ipIn, ipJson, run, waitFor } from './exec';
import { installRules, labFirewall } from './firewall';
import { labDown, listNamespaces } from './lab';
import {
  checkPrefix,
  DEFAULT_STATE_ROOT,
  INTERNET_HOST,
  LAN,
  nsName,
  PROVIDER_BACKBONE_IF,
  PROVIDER_CUSTOMER_IF,
  PROVIDERS,
  stateDirOf,
  type LabInfo,
  type LabUplink,
} from './topology';

/** The providers' end of every session (RFC 1332 IPCP local address), the same on both. */
export const PPP_PEER = '10.64.0.1';

export interface PppoeProvider {
  name: 'isp1' | 'isp2';
  /** First address of the provider's pool (pppoe-server -R) and the /24 it lies in. */
  poolStart: string;
  poolNet: string;
  /** The router's Ethernet towards this provider and the PPP unit it dials as. */
  routerEth: string;
  ifname: string;
}

export const PPPOE_PROVIDERS: readonly PppoeProvider[] = [
  { name: 'isp1', poolStart: '198.51.100.10', poolNet: '198.51.100.0/24', routerEth: 'eth1', ifname: 'ppp0' },
  { name: 'isp2', poolStart: '203.0.113.10', poolNet: '203.0.113.0/24', routerEth: 'eth2', ifname: 'ppp1' },
];

const ROLES = ['lan', 'router', 'isp1', 'isp2', 'inet'] as const;

/** Builds the PPPoE world and waits for both sessions; on failure removes what it built and rethrows. */
export async function pppoeUp(prefix: string, stateRoot = DEFAULT_STATE_ROOT): Promise<LabInfo> {
  checkPrefix(prefix);
  const ns = (r: (typeof ROLES)[number]) => nsName(prefix, r);
  const existing = (await listNamespaces()).filter((n) => ROLES.some((r) => n === ns(r)));
  if (existing.length > 0) throw new UplinkdError('lab', `lab '${prefix}' is already up (${existing.join(', ')})`);
  const stateDir = stateDirOf(prefix, stateRoot);
  try {
    await fs.mkdir(stateDir, { recursive: true });
    for (const r of ROLES) {
      await run('ip', ['netns', 'add', ns(r)]);
      // As the lab's namespaces: their own resolv.conf and iproute2 names (uplinkd writes its table names there).
      const etc = path.join('/etc/netns', ns(r));
      await fs.mkdir(path.join(etc, 'iproute2', 'rt_tables.d'), { recursive: true });
      await fs.mkdir(path.join(etc, 'iproute2', 'rt_protos.d'), { recursive: true });
      await fs.writeFile(path.join(etc, 'resolv.conf'), `# resolv.conf of lab namespace ${ns(r)}\n`);
      for (const f of ['rt_tables', 'rt_protos']) await fs.copyFile(path.join('/etc/iproute2', f), path.join(etc, 'iproute2', f)).catch(() => undefined);
    }
    const sysctl = (n: string, kv: Record<string, number>) => inNs(n, 'sysctl', ['-q', '-w', ...Object.entries(kv).map(([k, v]) => `${k}=${v}`)]);
    const rp = (v: number) => ({ 'net.ipv4.conf.all.rp_filter': v, 'net.ipv4.conf.default.rp_filter': v });
    await sysctl(ns('router'), { 'net.ipv4.ip_forward': 1, 'net.ipv4.fib_multipath_hash_policy': 1, ...rp(2) });
    for (const p of PPPOE_PROVIDERS) await sysctl(ns(p.name), { 'net.ipv4.ip_forward': 1, ...rp(1) });
    await sysctl(ns('inet'), { 'net.ipv4.ip_forward': 1, ...rp(0) });

    const veth = (a: string, ia: string, b: string, ib: string) =>
      ipIn(a, ['link', 'add', 'name', ia, 'type', 'veth', 'peer', 'name', ib, 'netns', b]);
    await veth(ns('lan'), LAN.hostIf, ns('router'), LAN.routerIf);
    for (const p of PPPOE_PROVIDERS) {
      await veth(ns('router'), p.routerEth, ns(p.name), PROVIDER_CUSTOMER_IF);
      await veth(ns(p.name), PROVIDER_BACKBONE_IF, ns('inet'), p.name);
    }
    await batch(ns('lan'), ['link set lo up', `link set ${LAN.hostIf} up`, `addr add ${LAN.hostAddress}/${LAN.prefixlen} dev ${LAN.hostIf}`, `route add default via ${LAN.routerAddress}`]);
    await batch(ns('router'), ['link set lo up', `link set ${LAN.routerIf} up`, `addr add ${LAN.routerAddress}/${LAN.prefixlen} dev ${LAN.routerIf}`, ...PPPOE_PROVIDERS.map((p) => `link set ${p.routerEth} up`)]);
    for (const [i, p] of PPPOE_PROVIDERS.entries()) {
      const b = PROVIDERS[i].backbone;
      await batch(ns(p.name), ['link set lo up', `link set ${PROVIDER_CUSTOMER_IF} up`, `link set ${PROVIDER_BACKBONE_IF} up`, `addr add ${b.provider}/${b.prefixlen} dev ${PROVIDER_BACKBONE_IF}`, `route add default via ${b.inet}`]);
    }
    await batch(ns('inet'), [
      'link set lo up',
      `addr add ${INTERNET_HOST}/32 dev lo`,
      ...PPPOE_PROVIDERS.flatMap((p, i) => {
        const b = PROVIDERS[i].backbone;
        return [`link set ${p.name} up`, `addr add ${b.inet}/${b.prefixlen} dev ${p.name}`, `route add ${p.poolNet} via ${b.provider} src ${INTERNET_HOST}`];
      }),
    ]);

    const firewall = await labFirewall(ns('router'));
    for (const p of PPPOE_PROVIDERS)
      await installRules(ns(p.name), firewall, [{ kind: 'source-filter', iif: firewall === 'nft' ? 'ppp*' : 'ppp+', allowed: p.poolNet, comment: 'spoofed customer source' }]);
    await installRules(ns('router'), firewall, [{ kind: 'masquerade', from: LAN.network, oifs: [firewall === 'nft' ? 'ppp*' : 'ppp+'] }]);

    for (const p of PPPOE_PROVIDERS) await startPppoeServer(ns(p.name), p, stateDir);
    const uplinks: LabUplink[] = [];
    for (const p of PPPOE_PROVIDERS) {
      await dialPppoe(ns('router'), p, stateDir);
      const address = await sessionAddress(ns('router'), p.ifname, 30_000);
      uplinks.push({ name: p.name, interface: p.ifname, mode: 'dhcp', address, prefixlen: 32, network: `${address}/32`, gateway: PPP_PEER, providerNs: ns(p.name) });
    }
    const info: LabInfo = {
      prefix,
      vlan: false,
      firewall,
      dhcpClient: 'dhclient',
      stateDir,
      configPath: path.join(stateDir, 'uplinkd.yaml'),
      leaseGlobs: [path.join(stateDir, 'none.*.leases')],
      ns: { lan: ns('lan'), router: ns('router'), isp1: ns('isp1'), isp2: ns('isp2'), inet: ns('inet') },
      lan: { interface: LAN.routerIf, network: LAN.network, routerAddress: LAN.routerAddress, hostAddress: LAN.hostAddress },
      uplinks,
      internetHost: INTERNET_HOST,
    };
    await fs.writeFile(info.configPath, renderLabConfig(info));
    await fs.writeFile(path.join(stateDir, 'lab.json'), JSON.stringify(info, null, 2) + '\n');
    return info;
  } catch (err) {
    await labDown(prefix, stateRoot).catch(() => undefined);
    throw err instanceof UplinkdError ? err : new UplinkdError('lab', `PPPoE lab up failed: ${(err as Error).message}`, { cause: err });
  }
}

/** pppoe-server on the provider's customer Ethernet; its pppd options in the state dir (no /etc/ppp). */
async function startPppoeServer(ns: string, p: PppoeProvider, stateDir: string): Promise<void> {
  const options = path.join(stateDir, `pppoe-server.${p.name}.options`);
  // noauth: the customer is not asked for a password; lcp-echo: a dead customer ends its session.
  await fs.writeFile(options, ['noauth', 'lcp-echo-interval 1', 'lcp-echo-failure 5', 'nodefaultroute', 'noproxyarp', 'mtu 1492', 'mru 1492', `ip-up-script /bin/true`, `ip-down-script /bin/true`, ''].join('\n'));
  await inNs(ns, 'pppoe-server', ['-I', PROVIDER_CUSTOMER_IF, '-L', PPP_PEER, '-R', p.poolStart, '-N', '4', '-O', options, '-X', path.join(stateDir, `pppoe-server.${p.name}.pid`)]);
}

/**
 * The router's pppd for provider `p`: dials over its Ethernet, names the link p.ifname, adds
 * `default dev` when there is none, and redials 1 s after a session ends (persist, holdoff 1).
 * It forks into the background once the first session is up (updetach).
 */
export async function dialPppoe(ns: string, p: PppoeProvider, stateDir: string): Promise<void> {
  await inNs(ns, 'pppd', [
    'plugin', 'pppoe.so', p.routerEth,
    'user', `customer-${p.name}`, 'password', 'pw',
    'noauth', 'updetach', 'persist', 'holdoff', '1', 'maxfail', '0',
    'defaultroute', 'noipdefault', 'ifname', p.ifname,
    'lcp-echo-interval', '1', 'lcp-echo-failure', '5',
    'mtu', '1492', 'mru', '1492',
    'ip-up-script', '/bin/true', 'ip-down-script', '/bin/true',
    'logfile', path.join(stateDir, `pppd.${p.ifname}.log`),
  ], { timeoutMs: 60_000 });
}

/** Waits until `ifname` has its session's address (`inet A peer P/32`) and returns A. */
export async function sessionAddress(ns: string, ifname: string, timeoutMs: number): Promise<string> {
  return waitFor(`a PPP session on ${ifname} in ${ns}`, async () => (await pppLink(ns, ifname))?.address, timeoutMs, 200);
}

export interface PppLink {
  ifindex: number;
  address?: string;
  peer?: string;
}

/** The PPP link's index and its address and peer, or undefined when the link does not exist. */
export async function pppLink(ns: string, ifname: string): Promise<PppLink | undefined> {
  const links = await ipJson<{ ifindex: number; addr_info?: { family: string; local: string; address?: string }[] }>(ns, ['-4', 'addr', 'show', 'dev', ifname]).catch(() => []);
  const l = links[0];
  if (!l) return undefined;
  const a = (l.addr_info ?? []).find((x) => x.family === 'inet');
  return { ifindex: l.ifindex, ...(a ? { address: a.local, peer: a.address } : {}) };
}

/** The provider ends every session it serves (SIGTERM to its pppd children; pppoe-server stays). */
export async function endSessions(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns]);
  const pids: number[] = [];
  for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    const comm = await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'pppd') pids.push(pid);
  }
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  return pids;
}

async function batch(ns: string, commands: string[]): Promise<void> {
  await ipIn(ns, ['-batch', '-'], { input: commands.join('\n') + '\n' });
}
