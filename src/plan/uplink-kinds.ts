// The kinds of uplink and how each one reaches the world (docs/design.md, "Uplink kinds"):
//   - Ethernet with a gateway inside its prefix:     default via G dev IF
//   - on-link gateway outside the prefix (cloud /32): default via G dev IF onlink
//   - point-to-point (PPP, tun, `inet A peer P/32`):  default dev IF, or via P dev IF onlink
// Pure: reads the kernel state the planner was given.
import type { Address, Cidr, Ipv4, KernelState, Link } from '../model/types';
import { contains, networkOf } from '../model/ipv4';
import { compareIps } from '../model/identity';
import { DEFAULT_DST } from '../model/text';
import { MAIN_TABLE } from '../model/types';


/** An uplink's own address as the planner uses it. */
export interface UplinkAddress {
  ip: Ipv4;
  prefixlen: number;
  /** Peer of a point-to-point address; the prefix length is the peer's. */
  peer?: Ipv4;
}

/** How the uplink's default route leaves: through a gateway (maybe on-link), or straight out of the device. */
export interface DefaultPath {
  /** Absent: `default dev IF` (a point-to-point link, everything sent reaches the peer). */
  gateway?: Ipv4;
  /** The gateway is outside every connected network of the device: routes and nexthops need `onlink`. */
  onlink: boolean;
}

/**
 * The network the kernel's connected route covers for this address: the peer's prefix for a
 * point-to-point address (`P/len dev IF`), the address's prefix otherwise, and none for a /32
 * without a peer (the kernel adds no prefix route for it; its gateway is on-link).
 */
export function connectedNetwork(a: UplinkAddress): Cidr | undefined {
  if (a.peer !== undefined) return networkOf(a.peer, a.prefixlen);
  return a.prefixlen < 32 ? networkOf(a.ip, a.prefixlen) : undefined;
}

/**
 * True when `gateway` is covered by the connected network of `a` (no `onlink` needed). On a
 * point-to-point address it never is: several links may share one peer address (two PPPoE sessions
 * to one provider), so the kernel must not look the peer up among the other links' routes.
 */
export function gatewayIsConnected(a: UplinkAddress, gateway: Ipv4): boolean {
  if (a.peer !== undefined) return false;
  const net = connectedNetwork(a);
  return net !== undefined && contains(net, gateway) && gateway !== a.ip;
}

/** A point-to-point link: the link says so (IFF_POINTOPOINT), or the address has a peer. */
export function isPointToPoint(link: Link | undefined, a: UplinkAddress): boolean {
  return a.peer !== undefined || link?.pointToPoint === true;
}

export interface DefaultCandidate {
  /** Absent for a device-only default (`default dev ppp0`, as pppd installs it). */
  gateway?: Ipv4;
  metric: number;
  table: number;
}

/**
 * Default routes per interface, in any table, not made by uplinkd (also inside multipath routes
 * and nexthop objects), best first: lowest metric, main before other tables, then the lowest
 * gateway (device-only last). One pass over the kernel's routes for all uplinks.
 */
export function defaultRouteCandidates(kernel: KernelState, protocol: number): Map<string, DefaultCandidate[]> {
  const nexthops = new Map(kernel.nexthops.map((n) => [n.id, n]));
  const byDev = new Map<string, DefaultCandidate[]>();
  for (const r of kernel.routes) {
    if (r.protocol === protocol || r.dst !== DEFAULT_DST || r.type !== 'unicast') continue;
    const metric = r.metric ?? 0;
    const add = (gateway: Ipv4 | undefined, dev: string | undefined): void => {
      if (dev === undefined) return;
      const list = byDev.get(dev) ?? [];
      list.push(gateway === undefined ? { metric, table: r.table } : { gateway, metric, table: r.table });
      byDev.set(dev, list);
    };
    if (r.nhid !== undefined) {
      const nh = nexthops.get(r.nhid);
      if (nh && nh.protocol !== protocol) {
        const members = nh.group ? nh.group.map((m) => nexthops.get(m.id)) : [nh];
        for (const m of members) if (m && !m.blackhole) add(m.gateway, m.dev);
      }
    } else if (r.multipath) {
      for (const hop of r.multipath) add(hop.gateway, hop.dev);
    } else {
      add(r.gateway, r.dev);
    }
  }
  const tableRank = (t: number): number => (t === MAIN_TABLE ? -1 : t);
  for (const list of byDev.values()) {
    list.sort((a, b) => a.metric - b.metric || tableRank(a.table) - tableRank(b.table)
      || (a.gateway === undefined ? 1 : 0) - (b.gateway === undefined ? 1 : 0) || compareIps(a.gateway, b.gateway));
  }
  return byDev;
}

/**
 * The default path learned from the system's default routes on the uplink's device: a gateway in
 * the connected network first, then one outside it (the kernel accepted it, so it is on the link:
 * `onlink` or a `G dev IF scope link` host route), then a device-only default. Undefined when
 * the device has no default route.
 */
export function learnedDefault(a: UplinkAddress, candidates: readonly DefaultCandidate[]): DefaultPath | undefined {
  const usable = candidates.filter((c) => c.gateway !== a.ip);
  const connected = usable.find((c) => c.gateway !== undefined && gatewayIsConnected(a, c.gateway));
  if (connected) return { gateway: connected.gateway, onlink: false };
  const onlink = usable.find((c) => c.gateway !== undefined);
  if (onlink) return { gateway: onlink.gateway, onlink: true };
  return usable.length > 0 ? { onlink: false } : undefined;
}

/** A given gateway (config or lease): on-link when no connected network of the address covers it. */
export function gatewayPath(a: UplinkAddress, gateway: Ipv4): DefaultPath {
  return { gateway, onlink: !gatewayIsConnected(a, gateway) };
}

/** Global IPv4 addresses of an interface, best first: dynamic (DHCP) before static, primary before secondary. */
export function globalAddresses(kernel: KernelState, dev: string): Address[] {
  return kernel.addresses
    .filter((a) => a.dev === dev && a.scope === 'universe')
    .sort((a, b) => Number(b.dynamic) - Number(a.dynamic) || Number(a.secondary) - Number(b.secondary)
      || compareIps(a.address, b.address) || a.prefixlen - b.prefixlen);
}
