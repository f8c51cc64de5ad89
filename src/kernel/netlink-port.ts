// KernelPort over rtnetlink: a handful of dumps for snapshot(), one acked request per change (pipelined),
// and a subscriber socket for notifications. Names <-> ifindex are mapped here; the codec is pure.
import { performance } from 'node:perf_hooks';
import { UplinkdError } from '../errors';
import type { Change, KernelState, Link, Route } from '../model/types';
import { routeOfInterest, type KernelEvent, type KernelEventKind, type KernelPort, type RouteInterest } from './port';
import * as C from '../netlink/constants';
import { formatAddress, formatLink, formatNexthop, formatRoute, formatRule } from '../model/text';
import { decodeAddress, decodeLink, encodeAddressDumpRequest, encodeLinkDumpRequest } from '../netlink/link';
import { ifNamesFrom, type IfNames } from '../netlink/names';
import { decodeNexthop, encodeNexthop, encodeNexthopDelete, encodeNexthopDumpRequest } from '../netlink/nexthop';
import { decodeRoute, encodeRoute, encodeRouteDumpRequest, peekRoute } from '../netlink/route';
import { decodeRule, encodeRule, encodeRuleDumpRequest } from '../netlink/rule';
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
   * Scoped snapshots dump every table at once (filtering as the datagrams arrive) while the kernel
   * holds fewer routes than this (default FULL_DUMP_MAX_ROUTES): one dump is cheaper than one per
   * table. Past it, table by table, so a full BGP table is not read on every cycle.
   */
  fullDumpMaxRoutes?: number;
}

export const FULL_DUMP_MAX_ROUTES = 20_000;
/**
 * After lost notifications, every table is walked again at most this often (ms): on a router whose
 * foreign table churns, the walk (seconds for a million routes) would itself overflow the
 * notification queue and repeat forever. Known tables are re-read at once; only a default route
 * that appeared in a new table while notifications were lost waits for the next walk.
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

export class NetlinkKernelPort implements KernelPort {
  private links = new Map<number, string>();
  private names: IfNames = ifNamesFrom([]);
  private readonly subscriptions = new Set<Subscription>();
  /** Set while a change waits for the links to be re-read: later changes queue behind it. */
  private held: Promise<void> | undefined;
  /** The interest of the last scoped snapshot: route notifications outside it are not events. */
  private interest: RouteInterest | undefined;
  /**
   * Tables outside interest.tables known to hold routes of interest (a DHCP client's default route
   * in a table of its own): dumped table by table. Found by one dump of every table (at the first
   * scoped snapshot, after lost notifications, when the interest changes) and by notifications.
   */
  private readonly extraTables = new Set<number>();
  private rediscover = true;
  /** The interest changed or nothing was walked yet: walk now, whatever REDISCOVER_MIN_INTERVAL_MS says. */
  private mustDiscover = true;
  /** performance.now() of the last walk of every table. */
  private discoveredAt = -Infinity;
  /** The last full dump saw fewer routes than options.fullDumpMaxRoutes. */
  private smallKernel = false;

  private constructor(
    private readonly client: NetlinkClient,
    private readonly options: NetlinkPortOptions,
    private readonly log: (line: string) => void,
  ) {}

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

  async snapshot(interest?: RouteInterest): Promise<KernelState> {
    const links = await this.readLinks();
    const names = this.names;
    const addresses = this.decodeAll(await this.client.dump(C.RTM_GETADDR, encodeAddressDumpRequest()), C.RTM_NEWADDR,
      (p) => decodeAddress(p, names));
    const routes = await this.readRoutes(interest);
    const rules = this.decodeAll(await this.client.dump(C.RTM_GETRULE, encodeRuleDumpRequest()), C.RTM_NEWRULE, decodeRule);
    const nexthops = this.decodeAll(await this.client.dump(C.RTM_GETNEXTHOP, encodeNexthopDumpRequest()), C.RTM_NEWNEXTHOP,
      (p) => decodeNexthop(p, names));
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
   * what it said is unknown, so only a fresh snapshot is right.
   */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: (reason?: string) => void): () => void {
    const sub = subscribe(SUBSCRIBED_GROUPS, (msgs) => {
      const at = performance.now();
      for (const m of msgs) {
        let e: KernelEvent | undefined;
        try {
          e = this.toEvent(m, at);
        } catch (err) {
          const why = `skipping netlink notification (type ${m.type}): ${(err as Error).message}`;
          this.log(why);
          this.rediscover = true;
          onOverrun(`${why}: full resync`);
          continue;
        }
        if (e) onEvent(e);
      }
    }, (reason) => {
      this.rediscover = true; // a lost route notification may have been the only news of a table
      onOverrun(reason);
    }, (err) => this.log(err.message), { socket: this.options.socket });
    this.subscriptions.add(sub);
    return () => {
      this.subscriptions.delete(sub);
      sub.close();
    };
  }

  close(): void {
    for (const s of this.subscriptions) s.close();
    this.subscriptions.clear();
    this.client.close();
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

  /** Hands the request to the client now (synchronously: the client sends in call order) and waits for its ack. */
  private async send(change: Change, req: Request): Promise<void> {
    const acked = this.client.request(req.type, req.flags, req.payload);
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
   * All routes, or those of `interest`. With strict checking the kernel dumps table by table
   * (interest.tables and the extra tables), so a foreign million-route table is never read; only
   * discovery reads every table, keeping just the routes of interest as the datagrams arrive.
   */
  private async readRoutes(interest: RouteInterest | undefined): Promise<Route[]> {
    const decode = (p: Buffer) => decodeRoute(p, this.names);
    if (!interest) {
      this.interest = undefined;
      return this.decodeAll(await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest()), C.RTM_NEWROUTE, decode);
    }
    if (JSON.stringify(interest) !== JSON.stringify(this.interest)) this.mustDiscover = true;
    this.interest = interest;
    const walk = this.mustDiscover || (this.rediscover && performance.now() - this.discoveredAt >= REDISCOVER_MIN_INTERVAL_MS);
    const wanted = (m: NlMessage): boolean => {
      const head = peekRoute(m.payload);
      return head === undefined ? m.type === C.RTM_NEWROUTE : routeOfInterest(head, interest);
    };
    if (walk || this.smallKernel || !this.client.strictCheck) {
      this.rediscover = false;
      this.mustDiscover = false;
      this.discoveredAt = performance.now();
      let seen = 0;
      const counted = (m: NlMessage): boolean => {
        seen++;
        return wanted(m);
      };
      const routes = this.decodeAll(await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest(), counted), C.RTM_NEWROUTE, decode)
        .filter((r) => routeOfInterest(r, interest));
      this.smallKernel = seen < (this.options.fullDumpMaxRoutes ?? FULL_DUMP_MAX_ROUTES);
      this.extraTables.clear();
      for (const r of routes) if (!interest.tables.includes(r.table)) this.extraTables.add(r.table);
      return routes;
    }
    const routes: Route[] = [];
    for (const table of [...new Set([...interest.tables, ...this.extraTables])]) {
      let msgs: NlMessage[];
      try {
        msgs = await this.client.dump(C.RTM_GETROUTE, encodeRouteDumpRequest(table), wanted);
      } catch (e) {
        if (e instanceof UplinkdError && e.detail.errno === 'ENOENT') { // no such table (yet, or any more)
          this.extraTables.delete(table);
          continue;
        }
        throw e;
      }
      const found = this.decodeAll(msgs, C.RTM_NEWROUTE, decode).filter((r) => r.table === table && routeOfInterest(r, interest));
      if (found.length === 0) this.extraTables.delete(table);
      routes.push(...found);
    }
    return routes;
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

  private toEvent(m: NlMessage, at: number): KernelEvent | undefined {
    const ev = (kind: KernelEventKind, action: 'new' | 'del', summary: string): KernelEvent => ({ kind, action, summary, at });
    switch (m.type) {
      case C.RTM_NEWLINK:
      case C.RTM_DELLINK: {
        const link = decodeLink(m.payload);
        const del = m.type === C.RTM_DELLINK;
        if (del) this.links.delete(link.index);
        else this.links.set(link.index, link.name);
        this.names = ifNamesFrom([...this.links].map(([index, name]) => ({ index, name })));
        return ev('link', del ? 'del' : 'new', formatLink(link));
      }
      case C.RTM_NEWADDR:
      case C.RTM_DELADDR: {
        const a = decodeAddress(m.payload, this.names);
        return a && ev('address', m.type === C.RTM_DELADDR ? 'del' : 'new', formatAddress(a));
      }
      case C.RTM_NEWROUTE:
      case C.RTM_DELROUTE: {
        // A foreign table's churn (a BGP feed) is not decoded: only routes of interest are events.
        const head = peekRoute(m.payload);
        const interest = this.interest;
        if (head && interest && !routeOfInterest(head, interest)) return undefined;
        const r = decodeRoute(m.payload, this.names);
        if (r && interest && m.type === C.RTM_NEWROUTE && !interest.tables.includes(r.table)) this.extraTables.add(r.table);
        return r && { ...ev('route', m.type === C.RTM_DELROUTE ? 'del' : 'new', `route ${formatRoute(r)}`), route: r };
      }
      case C.RTM_NEWRULE:
      case C.RTM_DELRULE: {
        const r = decodeRule(m.payload);
        return r && ev('rule', m.type === C.RTM_DELRULE ? 'del' : 'new', `rule ${formatRule(r)}`);
      }
      case C.RTM_NEWNEXTHOP:
      case C.RTM_DELNEXTHOP: {
        const n = decodeNexthop(m.payload, this.names);
        return n && ev('nexthop', m.type === C.RTM_DELNEXTHOP ? 'del' : 'new', `nexthop ${formatNexthop(n)}`);
      }
      default:
        return undefined;
    }
  }
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
