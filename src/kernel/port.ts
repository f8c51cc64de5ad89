import type { Change, KernelState, Route } from '../model/types';

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
  /** The device, for link and address events (a link event or address removal may have flushed routes and nexthops through it). */
  dev?: string;
}

/**
 * The routes a snapshot reads, so a router carrying a full BGP table in a table of its own is not
 * dumped on every cycle: every route of `tables` (uplinkd's own), and in any other table only the
 * default routes (0.0.0.0/0: DHCP clients' gateways) and the routes of `protocols` (what uplinkd owns).
 */
export interface RouteInterest {
  tables: number[];
  protocols: number[];
}

/** Whether `route` is one a snapshot with `interest` reads (see RouteInterest). */
export function routeOfInterest(route: Pick<Route, 'table' | 'dst' | 'protocol'>, interest: RouteInterest): boolean {
  return route.dst === '0.0.0.0/0' || interest.protocols.includes(route.protocol) || interest.tables.includes(route.table);
}

/** The one door to the kernel: everything uplinkd reads from or writes to rtnetlink goes through a KernelPort. */
export interface KernelPort {
  /**
   * Read links, addresses, routes, rules and nexthops (IPv4). Routes: all of them, or with `interest`
   * those routeOfInterest() accepts (others may be left out).
   */
  snapshot(interest?: RouteInterest): Promise<KernelState>;
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
