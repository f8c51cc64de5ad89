// Every network reachable through a non-uplink interface goes into every uplink table, so a reply
// from an uplink address to a container, a VPN peer or a second LAN leaves through that interface
// and not to the provider (LARTC HOWTO 4.2.1: "routes to local networks in each table").
// Followed from the kernel every cycle: bridges, tunnels and veths appear and go without a config change.
// Why copies and not `lookup main` first: docs/design.md, "Connected networks".
import type { Config } from '../config/types';
import { isGlob, nameMatcher } from '../facts/glob';
import { networkOf, overlaps } from '../model/ipv4';
import type { Cidr, Ipv4, KernelState, MultipathHop } from '../model/types';
import { comparePrefixes } from '../model/identity';
import { DEFAULT_DST } from '../model/text';
import { localHops, providerRouteDevice } from '../kernel/port';
import { globalAddresses } from './uplink-kinds';
import { MAIN_TABLE } from '../model/types';


/** A network to copy into every uplink table: `dst [via gateway] dev dev`, or over several `hops` (multipath). */
export interface LocalNetwork {
  dst: Cidr;
  /** The (first) hop's interface. */
  dev: string;
  gateway?: Ipv4;
  /** Two or more hops (an ECMP route, or a nexthop group resolved), each off the uplinks. */
  hops?: MultipathHop[];
}

/**
 * The networks behind non-uplink interfaces: the networks of the addresses on `lan:` interfaces
 * (names or globs such as `br-*`), and every route of the main table whose hops are all off the uplink
 * interfaces (connected networks of bridges, tunnels, veths; routes via a router on a LAN, ECMP over two, or on a
 * nexthop object as FRR installs them: localHops), lowest metric per prefix. Uplinks' interfaces, `lo`, default
 * routes (and the halves of one a full-tunnel VPN sets, 0.0.0.0/1 and 128.0.0.0/1) and uplinkd's own routes are left out.
 * Sorted by prefix, then device. Warnings: `lan:` names that do not exist.
 */
export function localNetworks(config: Config, kernel: KernelState, warnings: string[]): LocalNetwork[] {
  const uplinkIfs = new Set(config.uplinks.map((u) => u.interface));
  const upLinks = new Set(kernel.links.filter((l) => l.up).map((l) => l.name));
  const out = new Map<string, LocalNetwork & { metric: number }>();
  const add = (n: LocalNetwork, metric: number): void => {
    const have = out.get(n.dst);
    if (!have || metric < have.metric || (metric === have.metric && n.dev < have.dev)) out.set(n.dst, { ...n, metric });
  };

  const patterns = config.lan.map((l) => (isGlob(l) ? nameMatcher(l) : undefined));
  config.lan.forEach((l, i) => {
    if (!patterns[i] && !kernel.links.some((k) => k.name === l)) warnings.push(`LAN interface ${l} does not exist`);
  });
  const isLan = (dev: string): boolean => config.lan.some((l, i) => (patterns[i] ? patterns[i]!(dev) : l === dev));
  for (const link of kernel.links) {
    if (!isLan(link.name) || uplinkIfs.has(link.name) || !upLinks.has(link.name)) continue;
    for (const a of globalAddresses(kernel, link.name)) add({ dst: networkOf(a.peer ?? a.address, a.prefixlen), dev: link.name }, -1);
  }

  const nexthops = new Map(kernel.nexthops.map((n) => [n.id, n]));
  for (const r of kernel.routes) {
    if (r.table !== MAIN_TABLE || r.type !== 'unicast' || r.protocol === config.protocol || defaultInHalves(r.dst)) continue;
    const hops = localHops(r, (dev) => uplinkIfs.has(dev), nexthops);
    if (!hops || hops.some((h) => h.dev === 'lo' || !upLinks.has(h.dev))) continue;
    const [first] = hops;
    add(hops.length > 1 ? { dst: r.dst, dev: first!.dev, hops } : { dst: r.dst, dev: first!.dev, ...(first!.gateway !== undefined && { gateway: first!.gateway }) }, r.metric ?? 0);
  }
  return [...out.values()]
    .map(({ metric: _metric, ...n }) => n)
    .sort((a, b) => comparePrefixes(a.dst, b.dst) || (a.dev < b.dev ? -1 : a.dev > b.dev ? 1 : 0));
}

/**
 * Per uplink interface, the routes its provider's link brought into main (providerRouteDevice: a classless static
 * route of DHCP option 121 via a second router of the provider, a static route to the provider's management network,
 * the connected network of a further address), to be copied into that uplink's table only: a reply from its address,
 * or a flow pinned to it, then takes the provider's own path there, while the other uplinks' tables keep their
 * defaults for it (docs/design.md, "Connected networks"). Lowest metric per prefix; default routes and uplinkd's own
 * are left out. Keyed by interface name; each list sorted by prefix.
 */
export function providerNetworks(config: Config, kernel: KernelState): Map<string, LocalNetwork[]> {
  const devices = config.uplinks.map((u) => u.interface);
  const nexthops = new Map(kernel.nexthops.map((n) => [n.id, n]));
  const byDev = new Map<string, Map<string, LocalNetwork & { metric: number }>>();
  for (const r of kernel.routes) {
    if (r.table !== MAIN_TABLE || r.type !== 'unicast' || r.protocol === config.protocol || r.dst === DEFAULT_DST) continue;
    const dev = providerRouteDevice(r, devices, nexthops);
    if (dev === undefined) continue;
    const hops = localHops(r, (d) => d !== dev, nexthops)!;
    const n: LocalNetwork = hops.length > 1 ? { dst: r.dst, dev, hops } : { dst: r.dst, dev, ...(hops[0]!.gateway !== undefined && { gateway: hops[0]!.gateway }) };
    const metric = r.metric ?? 0;
    const nets = byDev.get(dev) ?? new Map<string, LocalNetwork & { metric: number }>();
    byDev.set(dev, nets);
    const have = nets.get(r.dst);
    if (!have || metric < have.metric) nets.set(r.dst, { ...n, metric });
  }
  return new Map([...byDev].map(([dev, nets]) => [dev, [...nets.values()]
    .map(({ metric: _metric, ...n }) => n).sort((a, b) => comparePrefixes(a.dst, b.dst))]));
}

/**
 * The default route, or a half of it: a VPN that takes all traffic without replacing the default installs 0.0.0.0/1
 * and 128.0.0.0/1 through its tunnel (OpenVPN's `redirect-gateway def1`). Copied into the uplink tables they would
 * send replies from the uplinks' addresses, and the VPN's own connection, into the tunnel: never copied.
 */
function defaultInHalves(dst: string): boolean {
  return dst === DEFAULT_DST || dst.endsWith('/1');
}

/** Local networks overlapping an uplink's network: which side a host in the overlap is on is truly ambiguous. */
export function overlapWarnings(locals: readonly LocalNetwork[], uplinks: readonly { name: string; network?: Cidr }[]): string[] {
  const out: string[] = [];
  for (const l of locals) {
    for (const u of uplinks) {
      if (u.network === undefined || !overlaps(l.dst, u.network)) continue;
      out.push(`${l.dst} on ${l.dev} overlaps uplink ${u.name}'s network ${u.network}: in ${u.name}'s table `
        + (l.dst === u.network ? `the uplink's own route wins, elsewhere ${l.dev}` : 'the longer prefix wins'));
    }
  }
  return out;
}
