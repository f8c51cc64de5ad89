import { MAIN_TABLE, type Change, type KernelState, type MultipathHop, type Nexthop, type Route, type Rule } from '../model/types';

/** What changed in the kernel, as far as a subscriber needs to know to replan. */
export type KernelEventKind = 'link' | 'address' | 'route' | 'rule' | 'nexthop';

/** One kernel notification (RTM_NEW* / RTM_DEL* of include/uapi/linux/rtnetlink.h), reduced to what replanning needs. */
export interface KernelEvent {
  kind: KernelEventKind;
  action: 'new' | 'del';
  /** Human-readable summary for logs in model/text's form, e.g. "addr if1 198.51.100.7/24". */
  summary: string;
  /** When the message was read: performance.now(), milliseconds since process start. */
  at: number;
  /** The route, for route events: whether it concerns uplinkd (routeOfInterest) without parsing `summary`. */
  route?: Route;
  /** The rule, for rule events (as decoded: every selector the kernel reported). */
  rule?: Rule;
  /** The nexthop object, for nexthop events. */
  nexthop?: Nexthop;
  /**
   * The kernel may have changed other objects along with this one without notifying them (routes on a deleted
   * nexthop, the groups it was a member of): the event says more than its object.
   */
  silentEffects?: true;
  /** The device, for link and address events (a link event or address removal may have flushed routes and nexthops through it). */
  dev?: string;
}

/**
 * The routes a snapshot reads, so a router carrying a full BGP table in a table of its own is not
 * dumped on every cycle: every route of `tables` (uplinkd's own and main; of main only those the planner
 * reads, see routeOfInterest), in any table the routes of
 * `protocols` (what uplinkd owns), and in any table the default routes (0.0.0.0/0: DHCP clients'
 * gateways) that use one of `devices` (the uplinks' interfaces): directly, in a multipath hop, or
 * through their nexthop object or a member of its group. That last rule is the kernel's RTA_OIF dump
 * filter (net/ipv4/fib_semantics.c fib_info_nh_uses_dev), so all of these can be read with filtered
 * dumps, without reading a foreign table.
 */
export interface RouteInterest {
  tables: number[];
  protocols: number[];
  /** Interface names. */
  devices: string[];
}

/** The part of a route that can be read without decoding it (netlink/route.ts peekRoute). */
export type RouteHeadFields = Pick<Route, 'table' | 'dst' | 'protocol'>;

/**
 * Whether a route with this table, destination and protocol may be one `interest` reads: false means
 * certainly not (its notification need not be decoded); true needs routeOfInterest on the whole route.
 */
export function mayBeOfInterest(head: RouteHeadFields, interest: RouteInterest): boolean {
  return head.dst === '0.0.0.0/0' || interest.protocols.includes(head.protocol) || interest.tables.includes(head.table);
}

/**
 * Whether `route` is one a snapshot with `interest` reads (see RouteInterest). `nexthops` resolves a
 * default route's nexthop object (id -> nexthop); without it such a route counts as of interest (the
 * safe side for events), with it a missing id counts as not (the kernel has no route on a missing nexthop).
 */
export function routeOfInterest(
  route: RouteHeadFields & Pick<Route, 'dev' | 'gateway' | 'multipath' | 'nhid'>,
  interest: RouteInterest,
  nexthops?: ReadonlyMap<number, Nexthop>,
): boolean {
  if (interest.protocols.includes(route.protocol)) return true;
  if (interest.tables.includes(route.table)) {
    // A route of main on a nexthop object is judged by its nexthop; without them it counts (the safe side for events).
    return route.table !== MAIN_TABLE || route.dst === '0.0.0.0/0' || (route.nhid !== undefined && !nexthops)
      || localRoute(route, (dev) => interest.devices.includes(dev), nexthops)
      || providerRouteDevice(route, interest.devices, nexthops) !== undefined;
  }
  if (route.dst !== '0.0.0.0/0') return false;
  if (route.nhid !== undefined && !nexthops) return true;
  return routeUsesDevice(route, interest.devices, nexthops ?? new Map());
}

/**
 * Whether `route` uses one of `devices` (interface names): directly, in a multipath hop, or through its nexthop object
 * or a member of its group, resolved in `nexthops` (a missing id uses none). What the kernel's RTA_OIF dump filter
 * matches (net/ipv4/fib_semantics.c fib_info_nh_uses_dev).
 */
export function routeUsesDevice(route: Pick<Route, 'dev' | 'multipath' | 'nhid'>, devices: readonly string[], nexthops: ReadonlyMap<number, Nexthop>): boolean {
  if (route.nhid !== undefined) return nexthopUsesDevice(route.nhid, devices, nexthops);
  return (route.dev !== undefined && devices.includes(route.dev)) || (route.multipath ?? []).some((h) => devices.includes(h.dev));
}

/**
 * The hops of `route` when every one goes through an interface that is not an uplink's (`isUplink` says which are):
 * a plain route's device, each hop of a multipath route (RTA_MULTIPATH), or the nexthop object's device or its group
 * members' (`nexthops` resolves ids; FRR installs its routes on nexthop objects), weights kept (1 for a single hop).
 * Undefined when a hop goes through an uplink, is a blackhole or cannot be resolved. Of main's routes other than
 * defaults these are the only ones the planner reads (src/plan/connected.ts copies them, the networks behind the LAN,
 * containers, VPNs and LAN routers, into every uplink table) and so the only ones the view keeps current; routes
 * through an uplink (a BGP feed from the providers installed into main) cause no cycle.
 */
export function localHops(
  route: Pick<Route, 'dev' | 'gateway' | 'multipath' | 'nhid'>,
  isUplink: (dev: string) => boolean,
  nexthops?: ReadonlyMap<number, Nexthop>,
): MultipathHop[] | undefined {
  let hops: MultipathHop[];
  if (route.nhid !== undefined) {
    const nh = nexthops?.get(route.nhid);
    if (!nh) return undefined;
    const members = nh.group ? nh.group.map((m) => ({ nh: nexthops!.get(m.id), weight: m.weight })) : [{ nh, weight: 1 }];
    if (members.length === 0 || members.some((m) => !m.nh?.dev || m.nh.blackhole || m.nh.group)) return undefined;
    hops = members.map((m) => ({ dev: m.nh!.dev!, weight: m.weight, ...(m.nh!.gateway !== undefined && { gateway: m.nh!.gateway }) }));
  } else if (route.multipath && route.multipath.length > 0) {
    hops = route.multipath;
  } else {
    if (route.dev === undefined) return undefined;
    hops = [{ dev: route.dev, weight: 1, ...(route.gateway !== undefined && { gateway: route.gateway }) }];
  }
  return hops.every((h) => !isUplink(h.dev)) ? hops : undefined;
}

/**
 * rtm_protocol values of the routes a provider's link brings along in main (include/uapi/linux/rtnetlink.h RTPROT_*):
 * the kernel's connected networks (2), `ip route` without a protocol (boot, 3: dhclient-script's classless routes),
 * an admin's static ones (4) and DHCP clients' (16: systemd-networkd's, dhcpcd's option 121 routes). Routing
 * daemons' (zebra 11, bird 12, bgp 186, ...) are a routing table of their own, never copied.
 */
export const PROVIDER_ROUTE_PROTOCOLS: readonly number[] = [2, 3, 4, 16];

/**
 * The uplink interface every hop of `route` goes through, when it is a route its provider's link brought into main
 * (PROVIDER_ROUTE_PROTOCOLS; a classless static route of DHCP option 121, a static route to the provider's other
 * router): src/plan/connected.ts copies it into that uplink's table only. Undefined otherwise.
 */
export function providerRouteDevice(
  route: Pick<Route, 'protocol' | 'dev' | 'gateway' | 'multipath' | 'nhid'>,
  uplinkDevices: readonly string[],
  nexthops?: ReadonlyMap<number, Nexthop>,
): string | undefined {
  if (!PROVIDER_ROUTE_PROTOCOLS.includes(route.protocol)) return undefined;
  const hops = localHops(route, (dev) => !uplinkDevices.includes(dev), nexthops);
  const dev = hops?.[0]?.dev;
  return dev !== undefined && hops!.every((h) => h.dev === dev) ? dev : undefined;
}

/** Whether localHops() finds `route`'s hops all off the uplinks. */
export function localRoute(
  route: Pick<Route, 'dev' | 'gateway' | 'multipath' | 'nhid'>,
  isUplink: (dev: string) => boolean,
  nexthops?: ReadonlyMap<number, Nexthop>,
): boolean {
  return localHops(route, isUplink, nexthops) !== undefined;
}

/** The devices (sorted, once each) of the nexthops `ids` found in `nexthops` and of their groups' members. */
export function nexthopDevices(ids: readonly number[], nexthops: readonly Nexthop[]): string[] {
  const byId = new Map(nexthops.map((n) => [n.id, n]));
  const devices = new Set<string>();
  for (const id of ids) {
    const nh = byId.get(id);
    for (const n of [nh, ...(nh?.group ?? []).map((m) => byId.get(m.id))]) if (n?.dev !== undefined) devices.add(n.dev);
  }
  return [...devices].sort();
}

/** Whether nexthop `id` (or a member of its group) is on one of `devices` (net/ipv4/nexthop.c nexthop_uses_dev). */
export function nexthopUsesDevice(id: number, devices: readonly string[], nexthops: ReadonlyMap<number, Nexthop>): boolean {
  const nh = nexthops.get(id);
  if (!nh) return false;
  if (nh.group) return nh.group.some((m) => { const member = nexthops.get(m.id); return member?.dev !== undefined && devices.includes(member.dev); });
  return nh.dev !== undefined && devices.includes(nh.dev);
}

/** The one door to the kernel: everything uplinkd reads from or writes to rtnetlink goes through a KernelPort. */
export interface KernelPort {
  /**
   * Read links, addresses, routes, rules and nexthops (IPv4). Routes: all of them, or with `interest`
   * those routeOfInterest() accepts (others may be left out).
   */
  snapshot(interest?: RouteInterest): Promise<KernelState>;
  /**
   * What may use the nexthop objects `ids` (uplinkd's, before it deletes them, which would delete such routes too):
   * every nexthop now (a fresh dump: one the kernel removed by itself, with its device or its last address, is seen
   * gone), and every IPv4 route, in any table and of any protocol, through the devices of those of `ids` that exist
   * and of their groups' members (nexthopDevices): directly, in a multipath hop, or through its nexthop object or a
   * member of its group (the kernel's RTA_OIF dump filter, net/ipv4/fib_semantics.c fib_info_nh_uses_dev: the kernel
   * walks every table and sends only the matches). No route is read when none of `ids` exists.
   */
  nexthopUsers(ids: readonly number[]): Promise<{ nexthops: Nexthop[]; routes: Route[] }>;
  /**
   * Apply one change. Adding what exists (EEXIST) and deleting what is gone
   * (ENOENT/ESRCH) succeed silently; anything else rejects with UplinkdError.
   */
  apply(change: Change): Promise<void>;
  /**
   * Subscribe to kernel notifications. `onOverrun(reason)` is called when notifications were lost
   * or not understood (ENOBUFS, a truncated datagram, one that failed to decode): the caller must
   * resync from a snapshot.
   */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: (reason?: string) => void): () => void;
  /** Releases the port's sockets (or child process); pending calls reject. */
  close(): void;
}
