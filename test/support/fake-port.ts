// An in-memory kernel for unit tests of the pure logic. It keeps the rtnetlink behaviour
// uplinkd depends on: one route per table+dst+metric (add of an existing one is EEXIST, tolerated),
// replace creates or swaps, deleting what is gone is tolerated, routes and nexthops need an existing,
// administratively up device and a reachable gateway, a preferred source must be a local address,
// a route's nhid and a group's members must exist, a nexthop cannot turn into a group or change its
// bucket count, and deleting a nexthop drops it from groups (an emptied group goes too) and removes
// the routes using it. Interface changes made through setInterfaces() flush like the kernel does.
import { UplinkdError } from '../../src/errors';
import { contains, networkOf } from '../../src/model/ipv4';
import type { Address, Change, KernelState, Link, Nexthop, Route, Rule } from '../../src/model/types';
import { canonicalRule, routeKey } from '../../src/model/identity';
import { formatAddress, formatChange, formatLink } from '../../src/model/text';
import { nexthopDevices, routeOfInterest, routeUsesDevice, type KernelEvent, type KernelEventKind, type KernelPort, type RouteInterest } from '../../src/kernel/port';

const EMPTY: KernelState = { links: [], addresses: [], routes: [], rules: [], nexthops: [] };

function kernelError(errno: string, message: string): UplinkdError {
  return new UplinkdError('kernel', `${message} (${errno})`, { errno });
}

const sameRuleExactly = (a: Rule, b: Rule): boolean => JSON.stringify(canonicalRule(a)) === JSON.stringify(canonicalRule(b));

/**
 * An in-memory KernelPort for unit tests, with the rtnetlink behaviour listed at the top of this file; refusals reject
 * with UplinkdError('kernel') carrying the errno name the kernel would give (ENODEV, ENETDOWN, ENETUNREACH, EINVAL), and
 * failures can be injected per change.
 */
export class FakePort implements KernelPort {
  /** Every change passed to apply() that did not fail, in order (tolerated EEXIST/ENOENT included). */
  readonly applied: Change[] = [];
  private state: KernelState;
  private readonly subscribers = new Set<{ onEvent: (e: KernelEvent) => void; onOverrun: () => void }>();
  private readonly faults: { match: (c: Change) => boolean; errno: string }[] = [];

  constructor(initial: KernelState = EMPTY) {
    this.state = structuredClone(initial);
    // The kernel's rule list is ordered by priority, and at one priority by insertion (net/core/fib_rules.c):
    // the initial rules count as inserted in the order given.
    this.state.rules.sort((a, b) => a.priority - b.priority);
  }

  /** The state as the kernel would report it: nhid routes echo their nexthops, linkdown set, marks with a full mask. */
  async snapshot(interest?: RouteInterest): Promise<KernelState> {
    const s = structuredClone(this.state);
    const nexthops = new Map(s.nexthops.map((n) => [n.id, n]));
    if (interest) s.routes = s.routes.filter((r) => routeOfInterest(r, interest, nexthops));
    const carrierless = (dev: string | undefined): boolean => dev !== undefined && dev !== 'lo' && !this.link(dev)?.lowerUp;
    for (const r of s.routes) {
      const nh = r.nhid !== undefined ? nexthops.get(r.nhid) : undefined;
      if (nh?.group) {
        r.multipath = nh.group.map((m) => ({ gateway: nexthops.get(m.id)?.gateway, dev: nexthops.get(m.id)?.dev ?? '', weight: m.weight }));
      } else if (nh) {
        r.gateway = nh.gateway;
        r.dev = nh.dev;
      }
      const devs = r.multipath ? r.multipath.map((h) => h.dev) : [r.dev];
      if (devs.every(carrierless)) r.linkdown = true;
    }
    for (const r of s.rules) if (r.fwmark !== undefined && r.fwmask === undefined) r.fwmask = 0xffffffff;
    return s;
  }

  /** The nexthops, and the routes snapshot() reports that use the devices of those of `ids` there (as the kernel's RTA_OIF filter). */
  async nexthopUsers(ids: readonly number[]): Promise<{ nexthops: Nexthop[]; routes: Route[] }> {
    const s = await this.snapshot();
    const devices = nexthopDevices(ids, s.nexthops);
    const byId = new Map(s.nexthops.map((n) => [n.id, n]));
    return { nexthops: s.nexthops, routes: devices.length > 0 ? s.routes.filter((r) => routeUsesDevice(r, devices, byId)) : [] };
  }

  /** The stored state, without what snapshot() adds. */
  current(): KernelState {
    return structuredClone(this.state);
  }

  /**
   * Applies one change as the kernel would and notifies subscribers; rejects with UplinkdError('kernel', errno) where the kernel would refuse.
   */
  async apply(change: Change): Promise<void> {
    const fault = this.faults.find((f) => f.match(change));
    if (fault) throw kernelError(fault.errno, `injected failure: ${formatChange(change)}`);
    switch (change.kind) {
      case 'route': this.applyRoute(change.op, change.route); break;
      case 'rule': this.applyRule(change.op, change.rule); break;
      case 'nexthop': this.applyNexthop(change.op, change.nexthop); break;
    }
    this.applied.push(structuredClone(change));
    this.emit(change.kind, change.op === 'del' ? 'del' : 'new', formatChange(change), change.kind === 'route' ? change.route : undefined, undefined,
      change.kind === 'rule' ? { rule: change.rule } : change.kind === 'nexthop' ? { nexthop: change.nexthop } : {});
  }

  /** Delivers an event for each applied change and each link or address setInterfaces() changes, and overrun() calls; returns the unsubscribe function. */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: () => void): () => void {
    const sub = { onEvent, onOverrun };
    this.subscribers.add(sub);
    return () => this.subscribers.delete(sub);
  }

  /** Drops every subscriber. */
  close(): void {
    this.subscribers.clear();
  }

  // ---- the world outside uplinkd (test controls) ----

  /** Make every apply() matching `match` fail with `errno` until the returned function is called. */
  failWhen(match: (c: Change) => boolean, errno = 'EINVAL'): () => void {
    const fault = { match, errno };
    this.faults.push(fault);
    return () => this.faults.splice(this.faults.indexOf(fault), 1);
  }

  /** Tell subscribers that notifications were lost (ENOBUFS). */
  overrun(): void {
    for (const s of this.subscribers) s.onOverrun();
  }

  /**
   * Replace links and addresses, with the kernel's side effects: a device that goes away or
   * administratively down loses its routes and nexthops; a device losing carrier loses its
   * nexthop objects (routes stay, linkdown); a removed address takes the routes preferring it.
   */
  setInterfaces(links: Link[], addresses: Address[]): void {
    const before = this.state;
    this.state = { ...before, links: structuredClone(links), addresses: structuredClone(addresses) };
    for (const old of before.links) {
      const now = this.link(old.name);
      if (!now || (old.up && !now.up)) this.flushDevice(old.name, true);
      else if (old.lowerUp && !now.lowerUp) this.flushDevice(old.name, false);
      if (!now) this.emit('link', 'del', formatLink(old), undefined, old.name);
    }
    for (const l of links) {
      const old = before.links.find((o) => o.name === l.name);
      if (!old || old.up !== l.up || old.lowerUp !== l.lowerUp) this.emit('link', 'new', formatLink(l), undefined, l.name);
    }
    const key = (a: Address): string => `${a.dev} ${a.address}/${a.prefixlen}`;
    const nowKeys = new Set(addresses.map(key));
    const beforeKeys = new Set(before.addresses.map(key));
    for (const gone of before.addresses.filter((a) => !nowKeys.has(key(a)))) {
      if (!addresses.some((a) => a.address === gone.address)) this.state.routes = this.state.routes.filter((r) => r.src !== gone.address);
      this.emit('address', 'del', formatAddress(gone), undefined, gone.dev);
    }
    for (const added of addresses.filter((a) => !beforeKeys.has(key(a)))) this.emit('address', 'new', formatAddress(added), undefined, added.dev);
  }

  // ---- kernel semantics ----

  private link(name: string): Link | undefined {
    return this.state.links.find((l) => l.name === name);
  }

  private emit(kind: KernelEventKind, action: 'new' | 'del', summary: string, route?: Route, dev?: string, object: Pick<KernelEvent, 'rule' | 'nexthop'> = {}): void {
    const e: KernelEvent = { kind, action, summary, at: performance.now(), ...(route ? { route } : {}), ...(dev ? { dev } : {}), ...object };
    for (const s of this.subscribers) s.onEvent(e);
  }

  private flushDevice(dev: string, routesToo: boolean): void {
    for (const n of this.state.nexthops.filter((n) => n.dev === dev)) this.removeNexthop(n.id);
    if (!routesToo) return;
    this.state.routes = this.state.routes.filter((r) => (r.multipath ? !r.multipath.every((h) => h.dev === dev) : r.dev !== dev));
  }

  /**
   * The device a route or nexthop goes out of must exist and be up; its gateway must be on one of the
   * device's networks (a point-to-point address's network is its peer's), unless marked onlink.
   */
  private checkPath(dev: string | undefined, gateway: string | undefined, what: string, onlink = false): void {
    if (dev === undefined) throw kernelError('ENODEV', `${what}: no device`);
    if (dev === 'lo') return;
    const link = this.link(dev);
    if (!link) throw kernelError('ENODEV', `${what}: no device ${dev}`);
    if (!link.up) throw kernelError('ENETDOWN', `${what}: device ${dev} is not up`);
    if (gateway === undefined || onlink) return;
    const onLink = this.state.addresses.some((a) => a.dev === dev && contains(networkOf(a.peer ?? a.address, a.prefixlen), gateway));
    if (!onLink) throw kernelError('ENETUNREACH', `${what}: gateway ${gateway} is not reachable on ${dev}`);
  }

  private checkRoute(r: Route): void {
    const what = `route ${r.dst} table ${r.table}`;
    if (r.table === 0) throw kernelError('EINVAL', `${what}: table 0`);
    if (r.src !== undefined && !this.state.addresses.some((a) => a.address === r.src)) {
      throw kernelError('EINVAL', `${what}: invalid prefsrc ${r.src}`);
    }
    if (r.type !== 'unicast') return;
    if (r.nhid !== undefined) {
      if (!this.state.nexthops.some((n) => n.id === r.nhid)) throw kernelError('EINVAL', `${what}: nexthop id ${r.nhid} does not exist`);
    } else if (r.multipath) {
      for (const hop of r.multipath) this.checkPath(hop.dev, hop.gateway, what);
    } else {
      this.checkPath(r.dev, r.gateway, what, r.onlink);
    }
  }

  private applyRoute(op: Change['op'], r: Route): void {
    const key = routeKey(r);
    const at = this.state.routes.findIndex((o) => routeKey(o) === key);
    if (op === 'del') {
      const match = this.state.routes.findIndex((o) => routeKey(o) === key && o.protocol === r.protocol && o.type === r.type);
      if (match >= 0) this.state.routes.splice(match, 1);
      return; // ESRCH tolerated
    }
    if (op === 'add' && at >= 0) return; // EEXIST tolerated
    this.checkRoute(r);
    const stored = structuredClone(r);
    delete stored.linkdown;
    if (at >= 0) this.state.routes[at] = stored;
    else this.state.routes.push(stored);
  }

  private applyRule(op: 'add' | 'replace' | 'del', r: Rule): void {
    const at = this.state.rules.findIndex((o) => sameRuleExactly(o, r));
    if (op === 'del') {
      if (at >= 0) this.state.rules.splice(at, 1);
      return; // ENOENT tolerated
    }
    if (at >= 0) return; // EEXIST tolerated
    if (r.action === 'lookup' && r.table === 0) throw kernelError('EINVAL', 'rule: lookup table 0');
    // Rules stay ordered by priority; a new rule goes after those with the same priority.
    const after = this.state.rules.findIndex((o) => o.priority > r.priority);
    this.state.rules.splice(after < 0 ? this.state.rules.length : after, 0, structuredClone(r));
  }

  private checkNexthop(n: Nexthop): void {
    const what = `nexthop ${n.id}`;
    if (n.group) {
      if (n.group.length === 0) throw kernelError('EINVAL', `${what}: empty group`);
      if (new Set(n.group.map((m) => m.id)).size !== n.group.length) throw kernelError('EINVAL', `${what}: duplicate group member`);
      for (const m of n.group) {
        const member = this.state.nexthops.find((o) => o.id === m.id);
        if (!member) throw kernelError('EINVAL', `${what}: group member ${m.id} does not exist`);
        if (member.group) throw kernelError('EINVAL', `${what}: group member ${m.id} is a group`);
        if (m.weight < 1 || m.weight > 256) throw kernelError('EINVAL', `${what}: weight ${m.weight} outside 1..256`);
      }
      if (n.resilient && n.resilient.buckets < 1) throw kernelError('EINVAL', `${what}: no buckets`);
    } else if (!n.blackhole) {
      this.checkPath(n.dev, n.gateway, what, n.onlink);
    }
  }

  private applyNexthop(op: Change['op'], n: Nexthop): void {
    const at = this.state.nexthops.findIndex((o) => o.id === n.id);
    if (op === 'del') {
      if (at >= 0) this.removeNexthop(n.id);
      return; // ENOENT tolerated
    }
    if (op === 'add' && at >= 0) return; // EEXIST tolerated
    if (at >= 0) {
      const old = this.state.nexthops[at]!;
      if (Boolean(old.group) !== Boolean(n.group)) throw kernelError('EINVAL', `nexthop ${n.id}: cannot replace a nexthop with a group or back`);
      if (Boolean(old.resilient) !== Boolean(n.resilient)) throw kernelError('EINVAL', `nexthop ${n.id}: cannot change the group type`);
      if (old.resilient && n.resilient && old.resilient.buckets !== n.resilient.buckets) {
        throw kernelError('EINVAL', `nexthop ${n.id}: cannot change the number of buckets of a resilient group`);
      }
    }
    this.checkNexthop(n);
    if (at >= 0) this.state.nexthops[at] = structuredClone(n);
    else this.state.nexthops.push(structuredClone(n));
  }

  private removeNexthop(id: number): void {
    this.state.nexthops = this.state.nexthops.filter((n) => n.id !== id);
    this.state.routes = this.state.routes.filter((r) => r.nhid !== id);
    for (const g of this.state.nexthops.filter((n) => n.group?.some((m) => m.id === id))) {
      g.group = g.group!.filter((m) => m.id !== id);
      if (g.group.length === 0) this.removeNexthop(g.id);
    }
  }
}
