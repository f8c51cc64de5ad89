// KernelPort over rtnetlink: a handful of dumps for snapshot() (or, with `cache`, a view kept current
// from notifications, as systemd-networkd keeps one), one acked request per change (pipelined), and one
// subscriber socket for notifications. Names <-> ifindex are mapped here; the codec is pure.
import { performance } from 'node:perf_hooks';
import { UplinkdError } from '../errors';
import { MAIN_TABLE, type Address, type Change, type KernelState, type Link, type Nexthop, type Route, type Rule } from '../model/types';
import { mayBeOfInterest, nexthopDevices, nexthopUsesDevice, routeOfInterest, routeUsesDevice, type KernelEvent, type KernelEventKind, type KernelPort, type RouteInterest } from './port';
import * as C from '../netlink/constants';
import { formatAddress, formatLink, formatNexthop, formatRoute, formatRule } from '../model/text';
import { decodeAddress, decodeLink, encodeAddressDumpRequest, encodeLinkDumpRequest } from '../netlink/link';
import { ifNamesFrom, type IfNames } from '../netlink/names';
import { decodeNexthop, encodeNexthop, encodeNexthopDelete, encodeNexthopDumpRequest } from '../netlink/nexthop';
import { decodeRoute, encodeRoute, encodeRouteDumpRequest, peekRoute, type RouteDumpFilter } from '../netlink/route';
import { decodeRule, encodeRule, encodeRuleDumpRequest } from '../netlink/rule';
import { routeNotificationFilter } from '../netlink/filter';
import { NetlinkClient, subscribe, type SocketFactory, type Subscription } from '../netlink/socket';
import type { NlMessage } from '../netlink/wire';

export interface NetlinkPortOptions {
  /** Per netlink request, ms (default 5000). */
  timeoutMs?: number;
  /** Where skipped malformed messages and subscriber errors are reported (default: stderr). */
  log?: (line: string) => void;
  /** Socket factory, for tests. */
  socket?: SocketFactory;
  /**
   * Keep an incremental view of the kernel (links, addresses, routes of interest, rules, nexthops),
   * filled by one dump and kept current from notifications; snapshot(interest) then answers from it
   * (see KernelView). For the daemon; a one-shot command dumps (default false).
   */
  cache?: boolean;
  /** With `cache`: the whole view is dumped again when its last full fill is older than this (ms, default VIEW_MAX_AGE_MS). */
  viewMaxAgeMs?: number;
}

/**
 * With `cache`, the view is re-read from dumps at least this often (ms): a safety net for what the
 * kernel changes without notifying (see KernelView), not needed for correctness of what it notifies.
 */
export const VIEW_MAX_AGE_MS = 30_000;

/**
 * After lost notifications, the tables holding routes of interest are discovered again at most this
 * often (ms): discovery is filtered kernel-side, but the kernel still walks every table for each
 * protocol and device of interest (about 0.1 s of system time per walk of a million routes), and a
 * churning foreign table may keep overflowing the notification queue. Known tables are re-read at
 * once; only a route of interest that appeared in a new table while notifications were lost waits.
 */
export const REDISCOVER_MIN_INTERVAL_MS = 60_000;

const SUBSCRIBED_GROUPS = [C.RTNLGRP_LINK, C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_IPV4_RULE, C.RTNLGRP_NEXTHOP];

/** How a change is sent. */
interface Request {
  type: number;
  flags: number;
  payload: Buffer;
}

const OP_FLAGS = { add: C.NLM_F_CREATE | C.NLM_F_EXCL, replace: C.NLM_F_CREATE | C.NLM_F_REPLACE, del: 0 } as const;
/** Which errnos mean "already so". */
const TOLERATED: Record<Change['op'], readonly string[]> = { add: ['EEXIST'], replace: [], del: ['ENOENT', 'ESRCH'] };

/**
 * The KernelPort over rtnetlink (include/uapi/linux/rtnetlink.h): snapshot() dumps links, addresses, routes of
 * interest, rules and nexthops (or, opened with `cache`, answers from a view kept current from notifications and
 * re-dumped when the kernel changes things without notifying); apply() sends one acked request per change,
 * pipelined, tolerating EEXIST on add and ENOENT/ESRCH on delete; subscribe() delivers decoded events. Open with
 * NetlinkKernelPort.open(); throws UplinkdError('netlink') when the socket cannot be opened.
 */
export class NetlinkKernelPort implements KernelPort {
  private links = new Map<number, string>();
  private names: IfNames = ifNamesFrom([]);
  /** The one subscriber socket (opened by subscribe() or a cached snapshot), shared by the view and the listeners. */
  private feed: Subscription | undefined;
  private readonly listeners = new Set<{ onEvent(e: KernelEvent): void; onOverrun(reason?: string): void }>();
  private readonly view: KernelView | undefined;
  /** Set while a change waits for the links to be re-read: later changes queue behind it. */
  private held: Promise<void> | undefined;
  /** The interest of the last scoped snapshot: route notifications outside it are not events. */
  private interest: RouteInterest | undefined;
  /**
   * Tables outside interest.tables known to hold routes of interest (a DHCP client's default route
   * in a table of its own): dumped table by table. Found by discovery (readRoutes) and by notifications.
   */
  private readonly extraTables = new Set<number>();
  /** Nexthops by id as the last nexthop dump and the notifications since say; undefined before a dump and after lost notifications. */
  private nexthopsKnown: Map<number, Nexthop> | undefined;
  private rediscover = true;
  /** Discover now, whatever REDISCOVER_MIN_INTERVAL_MS says: nothing was discovered yet, or what decides it changed. */
  private mustDiscover = true;
  /** performance.now() of the last discovery. */
  private discoveredAt = -Infinity;
  /** The key of the route filter on the subscriber socket (updateFilter), and why the last one could not be set. */
  private filterKey: string | undefined;
  private filterFailure: string | undefined;
  private routeNotificationCount = 0;

  private constructor(
    private readonly client: NetlinkClient,
    private readonly options: NetlinkPortOptions,
    private readonly log: (line: string) => void,
  ) {
    if (options.cache) this.view = new KernelView();
  }

  /** Open the request socket in the current network namespace and read the interface map. */
  static async open(options: NetlinkPortOptions = {}): Promise<NetlinkKernelPort> {
    const log = options.log ?? ((l: string) => { process.stderr.write(`${l}\n`); });
    const client = new NetlinkClient({ timeoutMs: options.timeoutMs, socket: options.socket, log });
    const port = new NetlinkKernelPort(client, options, log);
    try {
      await port.readLinks();
    } catch (e) {
      client.close();
      throw e;
    }
    return port;
  }

  /**
   * With `cache` and an interest: the view, after a sync() on the subscriber socket (every notification
   * queued before the call is applied first); kinds the view does not hold (yet, or after lost or
   * undecodable notifications, a link event, a deleted address or nexthop, or VIEW_MAX_AGE_MS) are
   * dumped, and kept from then on. Otherwise five dumps.
   */
  async snapshot(interest?: RouteInterest): Promise<KernelState> {
    const view = this.view;
    if (!view || !interest) return this.dumpAll(interest);
    this.openFeed();
    if (JSON.stringify(interest) !== JSON.stringify(this.interest)) view.invalidate(['routes']);
    if (performance.now() - view.filledAt >= (this.options.viewMaxAgeMs ?? VIEW_MAX_AGE_MS)) view.invalidate(ALL_KINDS);
    try {
      await this.feed!.sync();
    } catch (e) {
      this.log(`kernel view: ${(e as Error).message}: dumping`);
      view.invalidate(ALL_KINDS);
    }
    view.judgeRemovedSources(this.interest?.protocols ?? []);
    const names = () => this.names;
    const whole = ALL_KINDS.every((k) => !view.valid[k]);
    const started = performance.now();
    if (!view.valid.links) await view.fill('links', async () => this.readLinks(), (l) => [String(l.index), l]);
    if (!view.valid.addresses) {
      await view.fill('addresses', async () => this.decodeAll(await this.client.dump(C.RTM_GETADDR, encodeAddressDumpRequest()), C.RTM_NEWADDR,
        (p) => decodeAddress(p, names())), (a) => [addressKey(a), a]);
    }
    if (!view.valid.routes) await view.fill('routes', () => this.readRoutes(interest), (r) => [JSON.stringify(r), r]);
    if (!view.valid.rules) {
      await view.fill('rules', async () => this.decodeAll(await this.client.dump(C.RTM_GETRULE, encodeRuleDumpRequest()), C.RTM_NEWRULE, decodeRule),
        (r) => [JSON.stringify(r), r]);
    }
    if (!view.valid.nexthops) {
      await view.fill('nexthops', () => this.readNexthops(), (n) => [String(n.id), n]);
    }
    if (whole) view.filledAt = started;
    return view.state();
  }

  /**
   * One nexthop dump, then, for the devices of those of `ids` that exist, with strict checking one RTA_OIF dump per
   * device (the kernel walks every table and sends only the routes using it); without, one dump of every route,
   * judged here.
   */
  async nexthopUsers(ids: readonly number[]): Promise<{ nexthops: Nexthop[]; routes: Route[] }> {
    const nexthops = await this.readNexthops();
    const devices = nexthopDevices(ids, nexthops);
    return { nexthops, routes: devices.length > 0 ? await this.routesThrough(devices, nexthops) : [] };
  }

  private async routesThrough(devices: readonly string[], nexthops: readonly Nexthop[]): Promise<Route[]> {
    const decode = (p: Buffer) => decodeRoute(p, this.names);
    if (!this.client.strictCheck) {
      const all = this.decodeAll(await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest()), C.RTM_NEWROUTE, decode);
      const byId = new Map(nexthops.map((n) => [n.id, n]));
      return all.filter((r) => routeUsesDevice(r, devices, byId));
    }
    const byName = new Map([...this.links].map(([index, name]) => [name, index]));
    const found = new Map<string, Route>(); // a multipath route over two of the devices comes in both dumps
    for (const oif of new Set(devices.flatMap((d) => byName.get(d) ?? []))) {
      for (const r of this.decodeAll(await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest({ oif })), C.RTM_NEWROUTE, decode)) {
        found.set(JSON.stringify(r), r);
      }
    }
    return [...found.values()];
  }

  private async dumpAll(interest: RouteInterest | undefined): Promise<KernelState> {
    const links = await this.readLinks();
    const names = this.names;
    const addresses = this.decodeAll(await this.client.dump(C.RTM_GETADDR, encodeAddressDumpRequest()), C.RTM_NEWADDR,
      (p) => decodeAddress(p, names));
    const routes = await this.readRoutes(interest);
    const rules = this.decodeAll(await this.client.dump(C.RTM_GETRULE, encodeRuleDumpRequest()), C.RTM_NEWRULE, decodeRule);
    const nexthops = await this.readNexthops();
    return { links, addresses, routes, rules, nexthops };
  }

  /**
   * Requests leave in call order, so several applies may be outstanding at once (reconcile pipelines
   * them) and the kernel still handles the changes in order. A change naming an interface missing from
   * the map waits for the links to be re-read; later changes wait behind it rather than overtake it,
   * since they may depend on it (a group on a new nexthop, a route on the group).
   */
  apply(change: Change): Promise<void> {
    if (!this.held) {
      let req: Request | undefined;
      try {
        req = this.encode(change);
      } catch (e) {
        if (!isNoInterface(e)) return Promise.reject(e);
      }
      if (req) return this.send(change, req);
    }
    const prior = this.held;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    this.held = gate;
    return (async () => {
      try {
        await prior;
        const req = await this.encodeWithCurrentLinks(change);
        if (req) return this.send(change, req); // in the client's queue before the gate opens
      } finally {
        if (this.held === gate) this.held = undefined;
        release();
      }
    })();
  }

  /**
   * A notification that fails to decode is logged and skipped, and asks for a resync (`onOverrun`):
   * what it said is unknown, so only a fresh snapshot is right. All subscribers share one socket.
   */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: (reason?: string) => void): () => void {
    const listener = { onEvent, onOverrun };
    this.listeners.add(listener);
    try {
      this.openFeed();
    } catch (e) {
      this.listeners.delete(listener);
      throw e;
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && !this.view) this.closeFeed();
    };
  }

  /** Drops every listener and closes the notification socket and the request socket. */
  close(): void {
    this.listeners.clear();
    this.closeFeed();
    this.client.close();
  }

  private openFeed(): void {
    if (this.feed) return;
    this.feed = subscribe(SUBSCRIBED_GROUPS, (msgs) => this.onNotifications(msgs), (reason) => {
      this.lost();
      for (const l of [...this.listeners]) l.onOverrun(reason);
    }, (err) => this.log(err.message), { socket: this.options.socket });
    this.filterKey = undefined;
    this.updateFilter();
  }

  /**
   * Keeps the subscriber socket's kernel-side filter (src/netlink/filter.ts) in step with the interest: IPv4 route
   * notifications outside interest.tables and interest.protocols (other than default routes, and replaces in
   * extraTables, which toEvent reads) are dropped by the kernel, so a foreign table's churn never wakes the daemon. Called whenever either changes, before
   * the dumps that read the new interest (a change after the dump then arrives). Without an interest, or when the
   * filter cannot be set (logged once per reason), every notification is delivered and judged in toEvent as before.
   */
  private updateFilter(): void {
    const feed = this.feed;
    if (!feed) return;
    const interest = this.interest;
    const program = interest && routeNotificationFilter({ tables: interest.tables, replaceTables: [...this.extraTables], protocols: interest.protocols });
    const key = JSON.stringify(program ?? null);
    if (key === this.filterKey) return;
    const failure = feed.setFilter(program);
    this.filterKey = failure === undefined ? key : undefined;
    if (failure !== undefined && failure !== this.filterFailure) this.log(`kernel view: route notifications are not filtered in the kernel (${failure}): each is looked at here`);
    this.filterFailure = failure;
  }

  private closeFeed(): void {
    this.feed?.close();
    this.feed = undefined;
    this.view?.invalidate(ALL_KINDS); // nothing keeps it current any more
  }

  /** Notifications were lost or not understood: the view is dumped again, and the tables discovered again. */
  private lost(): void {
    this.rediscover = true; // a lost route notification may have been the only news of a table
    this.nexthopsKnown = undefined;
    this.view?.invalidate(ALL_KINDS);
  }

  /** IPv4 route notifications the subscriber socket received (before being judged here): what the kernel-side filter let through. */
  get routeNotifications(): number {
    return this.routeNotificationCount;
  }

  private onNotifications(msgs: NlMessage[]): void {
    const at = performance.now();
    for (const m of msgs) {
      if (m.type === C.RTM_NEWROUTE || m.type === C.RTM_DELROUTE) this.routeNotificationCount++;
      let e: KernelEvent | undefined;
      try {
        e = this.toEvent(m, at);
      } catch (err) {
        const why = `skipping netlink notification (type ${m.type}): ${(err as Error).message}`;
        this.log(why);
        this.lost();
        for (const l of [...this.listeners]) l.onOverrun(`${why}: full resync`);
        continue;
      }
      if (e) for (const l of [...this.listeners]) l.onEvent(e);
    }
  }

  /** Encodes `change`, re-reading the links once if it names an interface the map lacks; undefined = nothing to do. */
  private async encodeWithCurrentLinks(change: Change): Promise<Request | undefined> {
    try {
      return this.encode(change);
    } catch (e) {
      if (!isNoInterface(e)) throw e;
    }
    await this.readLinks(); // the interface may be newer than our map
    try {
      return this.encode(change);
    } catch (again) {
      // The kernel drops routes and nexthops with their device: nothing left to delete.
      if (change.op === 'del' && isNoInterface(again)) return undefined;
      throw again;
    }
  }

  /** Hands the request to the client now (synchronously: the client sends in call order) and waits until it is handled. */
  private async send(change: Change, req: Request): Promise<void> {
    const acked = this.client.change(req.type, req.flags, req.payload);
    // Deleting a route whose nexthop object is gone fails with EINVAL; the kernel dropped such routes
    // together with the nexthop, so the route is gone too. The question goes right behind the delete,
    // so its answer is the kernel's state when the delete was handled, not after later changes.
    const nexthopGone = change.kind === 'route' && change.op === 'del' && change.route.nhid !== undefined
      ? this.nexthopExists(change.route.nhid).then((exists) => !exists)
      : undefined;
    nexthopGone?.catch(() => undefined); // only awaited when the delete fails
    try {
      await acked;
    } catch (e) {
      const errno = e instanceof UplinkdError ? e.detail.errno : undefined;
      if (errno && TOLERATED[change.op].includes(errno)) return;
      if (errno === 'EINVAL' && nexthopGone && (await nexthopGone)) return;
      const kernelMessage = e instanceof UplinkdError ? e.detail.kernelMessage : undefined;
      const why = kernelMessage ? `${errno} (kernel: ${kernelMessage})` : errno ?? (e as Error).message;
      throw new UplinkdError('kernel', `${change.op} ${change.kind} failed: ${why}: ${describeChange(change)}`,
        { errno, cause: e, ...(kernelMessage ? { kernelMessage } : {}) });
    }
  }

  private async nexthopExists(id: number): Promise<boolean> {
    try {
      await this.client.request(C.RTM_GETNEXTHOP, 0, encodeNexthopDelete(id));
      return true;
    } catch (e) {
      if (e instanceof UplinkdError && e.detail.errno === 'ENOENT') return false;
      throw e;
    }
  }

  /**
   * All routes, or those of `interest`. With strict checking every dump is filtered kernel-side, so a
   * foreign million-route table is never read: each of interest.tables by table, and the tables found
   * to hold other routes of interest (extraTables) by table. Those are found by discovery: one dump per
   * protocol of interest (rtm_protocol) and one per device of interest (RTA_OIF), each over every table
   * but answered with only the matching routes; run at the first read, when the interest changes, when
   * a device of interest gets another ifindex or a nexthop moves onto or off one, and after lost
   * notifications (then at most every REDISCOVER_MIN_INTERVAL_MS). Without strict checking one dump of
   * everything, filtered as the datagrams arrive.
   */
  private async readRoutes(interest: RouteInterest | undefined): Promise<Route[]> {
    const decode = (p: Buffer) => decodeRoute(p, this.names);
    if (!interest) {
      this.interest = undefined;
      this.updateFilter();
      return this.decodeAll(await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest()), C.RTM_NEWROUTE, decode);
    }
    if (JSON.stringify(interest) !== JSON.stringify(this.interest)) this.mustDiscover = true;
    this.interest = interest;
    this.updateFilter();
    const wanted = (m: NlMessage): boolean => {
      const head = peekRoute(m.payload);
      return head === undefined ? m.type === C.RTM_NEWROUTE : mayBeOfInterest(head, interest);
    };
    // A default route on a nexthop object needs the nexthops to judge: read them only if one is met.
    let nexthops: Map<number, Nexthop> | undefined;
    const keep = async (routes: Route[]): Promise<Route[]> => {
      if (!nexthops && routes.some((r) => r.nhid !== undefined && !interest.tables.includes(r.table) && !interest.protocols.includes(r.protocol))) {
        nexthops = new Map((await this.readNexthops()).map((n) => [n.id, n]));
      }
      return routes.filter((r) => routeOfInterest(r, interest, nexthops ?? new Map()));
    };
    const dump = async (filter: RouteDumpFilter): Promise<Route[] | undefined> => {
      try {
        return this.decodeAll(await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest(filter), wanted), C.RTM_NEWROUTE, decode);
      } catch (e) {
        if (filter.table !== undefined && e instanceof UplinkdError && e.detail.errno === 'ENOENT') return undefined; // no such table (yet, or any more)
        throw e;
      }
    };
    if (!this.client.strictCheck) return keep((await dump({}))!);

    const discover = this.mustDiscover || (this.rediscover && performance.now() - this.discoveredAt >= REDISCOVER_MIN_INTERVAL_MS);
    const routes: Route[] = [];
    // Appended one by one: a table may hold a million routes, more than a call's arguments may be (push(...big) throws RangeError).
    for (const table of interest.tables) for (const r of (await dump({ table })) ?? []) if (r.table === table) routes.push(r);
    if (discover) {
      this.rediscover = false;
      this.mustDiscover = false;
      this.discoveredAt = performance.now();
      const others: Route[] = [];
      for (const protocol of interest.protocols) {
        for (const r of (await dump({ protocol }))!) if (r.protocol === protocol && !interest.tables.includes(r.table)) others.push(r);
      }
      const seen = new Set<string>();
      for (const oif of this.deviceIndexes(interest)) {
        for (const r of (await dump({ oif }))!) {
          if (r.dst !== '0.0.0.0/0' || interest.tables.includes(r.table) || interest.protocols.includes(r.protocol)) continue;
          const key = JSON.stringify(r); // a multipath route over two devices of interest comes in both dumps
          if (!seen.has(key)) others.push(r);
          seen.add(key);
        }
      }
      const found = await keep(others);
      this.extraTables.clear();
      for (const r of found) this.extraTables.add(r.table);
      this.updateFilter();
      return [...routes, ...found];
    }
    for (const table of [...this.extraTables].filter((t) => !interest.tables.includes(t))) {
      const found = await keep(((await dump({ table })) ?? []).filter((r) => r.table === table));
      if (found.length === 0) this.extraTables.delete(table);
      for (const r of found) routes.push(r);
    }
    this.updateFilter();
    return routes;
  }

  /** All nexthops, from a dump; they also become nexthopsKnown. */
  private async readNexthops(): Promise<Nexthop[]> {
    const all = this.decodeAll(await this.client.dump(C.RTM_GETNEXTHOP, encodeNexthopDumpRequest()), C.RTM_NEWNEXTHOP,
      (p) => decodeNexthop(p, this.names));
    this.nexthopsKnown = new Map(all.map((n) => [n.id, n]));
    return all;
  }

  /**
   * Applies a nexthop notification to nexthopsKnown; true when a nexthop that existed before it (or a
   * group holding one) is now on one of `devices` (interface names) and was not: routes on it elsewhere may have
   * become routes of interest. A new id has no routes yet, and a delete only takes routes away.
   */
  /**
   * What a nexthop notification changes besides the nexthop itself, none of it notified: routes on a deleted nexthop
   * go with it, and so do a group's that loses its last member; a deleted member leaves its groups; a replaced one
   * changes the gateway or hops that dumps show for the routes on it and on its groups. Those routes are read again
   * only when the view holds one that changes: deleted, or another program's (uplinkd's own nexthop routes are judged
   * without the hops shown, canonicalRoute). So uplinkd's replaces and stand-in swaps do not make it dump every table
   * of interest again, main among them, which may hold a routing daemon's table. True when such effects may have
   * happened (KernelEvent.silentEffects).
   */
  private nexthopChanged(view: KernelView, n: Nexthop | undefined, del: boolean): boolean {
    const known = view.nexthopMap();
    const ours = this.interest?.protocols;
    if (!n || !known || !ours) {
      view.invalidate(del ? ['routes', 'nexthops'] : ['routes']);
      if (n && !del) view.apply('nexthops', 'set', String(n.id), n);
      return true;
    }
    const groups = [...known.values()].filter((g) => g.group?.some((m) => m.id === n.id));
    const emptied = new Set(del ? groups.filter((g) => g.group!.length === 1).map((g) => g.id) : []);
    const onGroups = new Set(groups.map((g) => g.id));
    const changes = (r: Route): boolean => r.nhid !== undefined
      && (del && (r.nhid === n.id || emptied.has(r.nhid)) || ((r.nhid === n.id || onGroups.has(r.nhid)) && !ours.includes(r.protocol)));
    const routesChanged = view.someRoute(changes);
    if (routesChanged) view.invalidate(['routes']);
    if (!del) view.apply('nexthops', 'set', String(n.id), n);
    else if (groups.length > 0) view.invalidate(['nexthops']); // their member lists changed
    else view.apply('nexthops', 'del', String(n.id), n);
    return routesChanged || (del && groups.length > 0);
  }

  private movedOntoDevice(n: Nexthop, del: boolean, devices: readonly string[]): boolean {
    const known = this.nexthopsKnown;
    if (!known) return !del; // not known since lost notifications: assume so
    if (del) {
      known.delete(n.id);
      return false;
    }
    const existed = known.has(n.id);
    const on = (id: number) => nexthopUsesDevice(id, devices, known);
    const before = new Set([...known.keys()].filter(on));
    known.set(n.id, n);
    return [...known.keys()].some((id) => !before.has(id) && on(id) && (id !== n.id || existed));
  }

  /** The ifindexes of interest.devices that exist now. */
  private deviceIndexes(interest: RouteInterest): number[] {
    const byName = new Map([...this.links].map(([index, name]) => [name, index]));
    return interest.devices.flatMap((d) => byName.get(d) ?? []);
  }

  private async readLinks(): Promise<Link[]> {
    const links = this.decodeAll(await this.client.dump(C.RTM_GETLINK, encodeLinkDumpRequest()), C.RTM_NEWLINK, decodeLink);
    this.links = new Map(links.map((l) => [l.index, l.name]));
    this.names = ifNamesFrom(links);
    return links;
  }

  private decodeAll<T>(msgs: NlMessage[], type: number, decode: (payload: Buffer) => T | undefined): T[] {
    const out: T[] = [];
    for (const m of msgs) {
      if (m.type !== type) continue;
      try {
        const v = decode(m.payload);
        if (v !== undefined) out.push(v);
      } catch (e) {
        this.log(`skipping netlink message (type ${type}): ${(e as Error).message}`);
      }
    }
    return out;
  }

  private encode(change: Change): Request {
    const { op } = change;
    const flags = OP_FLAGS[op];
    switch (change.kind) {
      case 'route':
        return { flags, type: op === 'del' ? C.RTM_DELROUTE : C.RTM_NEWROUTE, payload: encodeRoute(change.route, this.names, op === 'del') };
      case 'rule':
        return { flags, type: op === 'del' ? C.RTM_DELRULE : C.RTM_NEWRULE, payload: encodeRule(change.rule) };
      case 'nexthop':
        return {
          flags,
          type: op === 'del' ? C.RTM_DELNEXTHOP : C.RTM_NEWNEXTHOP,
          payload: op === 'del' ? encodeNexthopDelete(change.nexthop.id) : encodeNexthop(change.nexthop, this.names),
        };
    }
  }

  /** Updates the interface map and the view from one notification; the event it makes, if any. */
  private toEvent(m: NlMessage, at: number): KernelEvent | undefined {
    const ev = (kind: KernelEventKind, action: 'new' | 'del', summary: string): KernelEvent => ({ kind, action, summary, at });
    const view = this.view;
    switch (m.type) {
      case C.RTM_NEWLINK:
      case C.RTM_DELLINK: {
        const link = decodeLink(m.payload);
        const del = m.type === C.RTM_DELLINK;
        const devicesBefore = this.interest && this.deviceIndexes(this.interest).join();
        if (del) this.links.delete(link.index);
        else this.links.set(link.index, link.name);
        this.names = ifNamesFrom([...this.links].map(([index, name]) => ({ index, name })));
        // A device of interest renamed, created or re-created: its routes in other tables are found again.
        if (this.interest && devicesBefore !== this.deviceIndexes(this.interest).join()) this.mustDiscover = true;
        // A link going down or away takes its routes and nexthops along without notifications, carrier
        // changes flip routes' linkdown, a rename changes every name: read everything again.
        view?.invalidate(ALL_KINDS);
        return { ...ev('link', del ? 'del' : 'new', formatLink(link)), dev: link.name };
      }
      case C.RTM_NEWADDR:
      case C.RTM_DELADDR: {
        const del = m.type === C.RTM_DELADDR;
        const a = decodeAddress(m.payload, this.names);
        if (a) view?.apply('addresses', del ? 'del' : 'set', addressKey(a), a);
        // Deleting a device's last address flushes every route through it (fib_inetaddr_event: fib_disable_ip);
        // deleting another drops the routes using it as source (fib_sync_down_addr), judged at the next snapshot
        // once the notifications it does send (its prefix route's) are in. The flush is not notified, nor, before
        // recent kernels, the drop.
        if (del && a && view?.addressOn(a.dev) === true) view.sourceRemoved(a.address);
        else if (del) view?.invalidate(['routes']);
        return a && { ...ev('address', del ? 'del' : 'new', formatAddress(a)), dev: a.dev };
      }
      case C.RTM_NEWROUTE:
      case C.RTM_DELROUTE: {
        // A foreign table's churn (a BGP feed) is not decoded: only routes of interest are events.
        const head = peekRoute(m.payload);
        const interest = this.interest;
        const del = m.type === C.RTM_DELROUTE;
        const replace = !del && (m.flags & C.NLM_F_REPLACE) !== 0;
        // A replace also says the route it replaced is gone, which may have been one of interest:
        // decoded only when the view holds a route of that table.
        if (head && interest && !mayBeOfInterest(head, interest) && !(replace && view?.holdsTable(head.table))) return undefined;
        const r = decodeRoute(m.payload, this.names);
        if (!r) return undefined;
        if (interest) {
          const judged = r.nhid !== undefined && r.dst === '0.0.0.0/0' && !interest.tables.includes(r.table) && !interest.protocols.includes(r.protocol);
          // Main's routes on nexthop objects are judged by them too (localHops: FRR's routes via a LAN router).
          const nexthops = r.nhid !== undefined && (judged || r.table === MAIN_TABLE) ? view?.nexthopMap() : undefined;
          if (judged && view && !nexthops) {
            view.invalidate(['routes']); // which device it uses is not known here: read the routes again
            this.extraTables.add(r.table);
            this.updateFilter();
            return { ...ev('route', del ? 'del' : 'new', `route ${formatRoute(r)}`), route: r };
          }
          if (!routeOfInterest(r, interest, nexthops)) {
            if (replace) view?.dropReplaced(r);
            return undefined;
          }
          if (!del && !interest.tables.includes(r.table) && !this.extraTables.has(r.table)) {
            this.extraTables.add(r.table);
            this.updateFilter();
          }
        }
        if (view) {
          if (!interest) view.invalidate(['routes']);
          else if (replace) view.replaceRoute(r);
          else view.apply('routes', del ? 'del' : 'set', JSON.stringify(r), r);
        }
        return { ...ev('route', del ? 'del' : 'new', `route ${formatRoute(r)}`), route: r };
      }
      case C.RTM_NEWRULE:
      case C.RTM_DELRULE: {
        const del = m.type === C.RTM_DELRULE;
        const r = decodeRule(m.payload);
        if (r) view?.apply('rules', del ? 'del' : 'set', JSON.stringify(r), r);
        return r && { ...ev('rule', del ? 'del' : 'new', `rule ${formatRule(r)}`), rule: r };
      }
      case C.RTM_NEWNEXTHOP:
      case C.RTM_DELNEXTHOP: {
        const del = m.type === C.RTM_DELNEXTHOP;
        const n = decodeNexthop(m.payload, this.names);
        const silentEffects = view ? this.nexthopChanged(view, n, del) : false;
        // A nexthop moved onto a device of interest makes the default routes on it of interest, maybe in
        // tables not read yet: discover again.
        if (n && this.movedOntoDevice(n, del, this.interest?.devices ?? []) && this.interest) this.mustDiscover = true;
        return n && { ...ev('nexthop', del ? 'del' : 'new', `nexthop ${formatNexthop(n)}`), nexthop: n, ...(silentEffects ? { silentEffects } : {}) };
      }
      default:
        return undefined;
    }
  }
}

type ViewKind = 'links' | 'addresses' | 'routes' | 'rules' | 'nexthops';
const ALL_KINDS: readonly ViewKind[] = ['links', 'addresses', 'routes', 'rules', 'nexthops'];
interface ViewObjects { links: Link; addresses: Address; routes: Route; rules: Rule; nexthops: Nexthop }

/**
 * The kernel as the last dumps and the notifications since say it, per kind, keyed by identity:
 * link by ifindex, address by device, local and prefix, nexthop by id, route and rule by their whole
 * content (the kernel's notifications carry the whole object, so a delete finds it; routes appended
 * beside one another stay apart). A kind is valid from a dump until something says it may differ
 * from a fresh dump: lost notifications, or what the kernel changes without notifying (routes flushed
 * with a link, an address or a nexthop; linkdown flags). Notifications that arrive while a kind is
 * being dumped are applied on top of the dump: each sets or deletes one key, so applying one the dump
 * already reflects leaves the same result.
 */
class KernelView {
  private readonly maps: { [K in ViewKind]: Map<string, ViewObjects[K]> } = {
    links: new Map(), addresses: new Map(), routes: new Map(), rules: new Map(), nexthops: new Map(),
  };
  readonly valid: Record<ViewKind, boolean> = { links: false, addresses: false, routes: false, rules: false, nexthops: false };
  /** Bumped by invalidate(): a fill that saw it change is not valid. */
  private readonly epoch: Record<ViewKind, number> = { links: 0, addresses: 0, routes: 0, rules: 0, nexthops: 0 };
  /** Notifications held back while the kind is being dumped. */
  private readonly held: { [K in ViewKind]?: (() => void)[] } = {};
  /** performance.now() of the last fill of every kind at once; -Infinity before. */
  filledAt = -Infinity;

  invalidate(kinds: readonly ViewKind[]): void {
    for (const k of kinds) {
      this.valid[k] = false;
      this.epoch[k]++;
    }
  }

  /** Replaces the kind with `read()`'s answer, then applies the notifications that came meanwhile. */
  async fill<K extends ViewKind>(kind: K, read: () => Promise<ViewObjects[K][]>, keyed: (o: ViewObjects[K]) => [string, ViewObjects[K]]): Promise<void> {
    const epoch = this.epoch[kind];
    const held: (() => void)[] = [];
    this.held[kind] = held;
    try {
      const objects = await read();
      this.maps[kind].clear();
      for (const o of objects) {
        const [key, value] = keyed(o);
        this.maps[kind].set(key, value);
      }
    } finally {
      this.held[kind] = undefined;
    }
    for (const f of held) f();
    if (this.epoch[kind] === epoch) this.valid[kind] = true;
  }

  apply<K extends ViewKind>(kind: K, op: 'set' | 'del', key: string, value: ViewObjects[K]): void {
    const held = this.held[kind];
    if (held) {
      held.push(() => this.apply(kind, op, key, value));
      return;
    }
    if (!this.valid[kind]) return;
    if (op === 'set') this.maps[kind].set(key, value);
    else this.maps[kind].delete(key);
  }

  /**
   * NLM_F_REPLACE: the route took the place of the one with its table, prefix and metric (fib_table_insert).
   * With several such routes (appended) which one went is not said: read the routes again.
   */
  replaceRoute(r: Route): void {
    if (this.removeReplaced(r, () => this.replaceRoute(r))) this.maps.routes.set(JSON.stringify(r), r);
  }

  /** Removes the routes a replace notification of a route not of interest took the place of (see replaceRoute). */
  dropReplaced(r: Route): void {
    this.removeReplaced(r, () => this.dropReplaced(r));
  }

  /**
   * Deletes the route `r` took the place of (same table, prefix and metric). False when nothing more may be done now:
   * the routes are being dumped (`retry` runs after the dump), not in the view, or several matched (routes invalidated).
   */
  private removeReplaced(r: Route, retry: () => void): boolean {
    const held = this.held.routes;
    if (held) {
      held.push(retry);
      return false;
    }
    if (!this.valid.routes) return false;
    const same = [...this.maps.routes].filter(([, o]) => o.table === r.table && o.dst === r.dst && (o.metric ?? 0) === (r.metric ?? 0));
    if (same.length > 1) {
      this.invalidate(['routes']);
      return false;
    }
    for (const [key] of same) this.maps.routes.delete(key);
    return true;
  }

  /** Whether the view holds a route for which `test` is true (or may: while the routes are being dumped). */
  someRoute(test: (r: Route) => boolean): boolean {
    if (this.held.routes) return true;
    if (!this.valid.routes) return false;
    for (const r of this.maps.routes.values()) if (test(r)) return true;
    return false;
  }

  /** Whether the view holds an address on `dev`; undefined when it does not know (addresses invalid or being dumped). */
  addressOn(dev: string): boolean | undefined {
    if (this.held.addresses || !this.valid.addresses) return undefined;
    for (const a of this.maps.addresses.values()) if (a.dev === dev) return true;
    return false;
  }

  /** Addresses deleted since the last snapshot (RTM_DELADDR): see judgeRemovedSources. */
  private readonly removedSources = new Set<string>();

  /** Notes an address deleted: routes with it as their source may have gone without notifications. */
  sourceRemoved(address: string): void {
    if (this.held.routes) this.invalidate(['routes']);
    else this.removedSources.add(address);
  }

  /**
   * At a snapshot, once the notifications before it are in: the kernel drops the routes of table main (or of the
   * device's VRF table) whose preferred source was a deleted address (net/ipv4/fib_semantics.c fib_sync_down_addr,
   * restricted to that table since Linux 5.0); older kernels say nothing of it (6.18 sends RTM_DELROUTE for each,
   * and then none is left to judge). The routes are read again only if the view still holds a
   * route with such a source in main, or another program's anywhere (uplinkd's own tables are no VRF's, so that flush
   * spares them); otherwise an address removal costs no dump of every table of interest, main among them.
   */
  judgeRemovedSources(ownProtocols: readonly number[]): void {
    if (this.removedSources.size === 0) return;
    const removed = this.removedSources;
    const flushable = (r: Route) => r.table === MAIN_TABLE || !ownProtocols.includes(r.protocol);
    if (this.someRoute((r) => r.src !== undefined && removed.has(r.src) && flushable(r))) this.invalidate(['routes']);
    removed.clear();
  }

  /** Whether the view holds a route in `table` (or may: while the routes are being dumped). */
  holdsTable(table: number): boolean {
    if (this.held.routes) return true;
    for (const r of this.maps.routes.values()) if (r.table === table) return true;
    return false;
  }

  /** The nexthops by id, when the view knows them now (valid and not being dumped). */
  nexthopMap(): ReadonlyMap<number, Nexthop> | undefined {
    if (!this.valid.nexthops || this.held.nexthops) return undefined;
    const byId = new Map<number, Nexthop>();
    for (const n of this.maps.nexthops.values()) byId.set(n.id, n);
    return byId;
  }

  /** The view as a snapshot (fresh arrays; the objects are shared and must not be changed). */
  state(): KernelState {
    const m = this.maps;
    return { links: [...m.links.values()], addresses: [...m.addresses.values()], routes: [...m.routes.values()],
      rules: [...m.rules.values()], nexthops: [...m.nexthops.values()] };
  }
}

/** An IPv4 address's identity on its device (the kernel's: local address, prefix length and peer). */
function addressKey(a: Address): string {
  return `${a.dev} ${a.address}/${a.prefixlen} ${a.peer ?? ''}`;
}

/** The object in iproute2-like syntax, for error messages (made only when one is). */
function describeChange(change: Change): string {
  switch (change.kind) {
    case 'route': return formatRoute(change.route);
    case 'rule': return formatRule(change.rule);
    case 'nexthop': return formatNexthop(change.nexthop);
  }
}

function isNoInterface(e: unknown): boolean {
  return e instanceof UplinkdError && e.code === 'kernel' && e.message.startsWith('no interface ');
}
