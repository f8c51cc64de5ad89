// Identity and comparable forms of kernel objects, shared by the planner (dedup, sorting),
// the diff and the fake kernel. The kernel reports fields uplinkd never sets (linkdown, the
// resolved gateway of an nhid route, fwmask 0xffffffff, "from all"); the canonical forms keep
// only what decides whether an object is the one uplinkd wants.
import { parseIpv4 } from './ipv4';
import type { MultipathHop, Nexthop, Route, Rule } from './types';

const ALL = '0.0.0.0/0';
const U32_MAX = 0xffffffff;

function canonicalPrefix(p: string | undefined): string | undefined {
  if (p === undefined || p === ALL || p === 'default') return undefined;
  return p;
}

/**
 * The kernel's identity of an IPv4 route: `table dst metric` (RTA_TABLE, rtm_dst_len/RTA_DST, RTA_PRIORITY; tos is
 * never set by uplinkd). A second route with the same key is EEXIST; NLM_F_REPLACE swaps it.
 */
export function routeKey(r: Route): string {
  return `${r.table} ${canonicalPrefix(r.dst) ?? ALL} ${r.metric ?? 0}`;
}

/**
 * A map keyed by a route's kernel identity (routeKey: table, prefix, metric) without building routeKey's string:
 * a map per table, keyed by the prefix as it is (its string hash is cached by the engine), with ` <metric>` appended
 * only for a metric other than 0 (a prefix holds no space, so the two never meet). A no-op cycle looks up every
 * route of the kernel and of the plan (thousands at 64 uplinks) and per-route strings and maps were most of the diff's time.
 */
export class RouteMap<V> {
  private readonly tables = new Map<number, Map<string, V>>();

  private static key(r: Pick<Route, 'dst' | 'metric'>): string {
    const dst = canonicalPrefix(r.dst) ?? ALL;
    return r.metric ? `${dst} ${r.metric}` : dst;
  }

  /** The value stored for the route with r's table, prefix and metric, or undefined. */
  get(r: Pick<Route, 'table' | 'dst' | 'metric'>): V | undefined {
    return this.tables.get(r.table)?.get(RouteMap.key(r));
  }

  /** Whether a value is stored for r's table, prefix and metric. */
  has(r: Pick<Route, 'table' | 'dst' | 'metric'>): boolean {
    return this.get(r) !== undefined;
  }

  /** Stores `value` for r's table, prefix and metric, replacing any earlier one. */
  set(r: Pick<Route, 'table' | 'dst' | 'metric'>, value: V): void {
    let keys = this.tables.get(r.table);
    if (!keys) this.tables.set(r.table, (keys = new Map()));
    keys.set(RouteMap.key(r), value);
  }

  /** In insertion order of tables, then of keys within a table. */
  *values(): IterableIterator<V> {
    for (const keys of this.tables.values()) yield* keys.values();
  }

  /**
   * The value stored for r's table, prefix and metric; when there is none, stores and returns `create()`.
   * One lookup where get() then set() would take two (the diff does this per kernel route).
   */
  upsert(r: Pick<Route, 'table' | 'dst' | 'metric'>, create: () => V): V {
    let keys = this.tables.get(r.table);
    if (!keys) this.tables.set(r.table, (keys = new Map()));
    const key = RouteMap.key(r);
    let value = keys.get(key);
    if (value === undefined) keys.set(key, (value = create()));
    return value;
  }

  /** Calls `fn` with every value, in the order of values(), without a generator. */
  forEach(fn: (value: V) => void): void {
    for (const keys of this.tables.values()) for (const v of keys.values()) fn(v);
  }
}

/** The fields uplinkd sets on a route, normalised. */
export function canonicalRoute(r: Route): Route {
  const c: Route = { table: r.table, dst: canonicalPrefix(r.dst) ?? ALL, type: r.type, protocol: r.protocol, scope: r.scope };
  if (r.metric) c.metric = r.metric;
  if (r.src) c.src = r.src;
  if (r.nhid !== undefined) {
    c.nhid = r.nhid; // the kernel echoes the nexthop's gateway/dev: not part of the route
    return c;
  }
  if (r.multipath && r.multipath.length > 0) {
    c.multipath = r.multipath.map((h) => (h.gateway ? { gateway: h.gateway, dev: h.dev, weight: h.weight } : { dev: h.dev, weight: h.weight }));
  } else {
    if (r.gateway) c.gateway = r.gateway;
    if (r.dev) c.dev = r.dev;
    if (r.onlink) c.onlink = true;
  }
  return c;
}

const sameHops = (a: MultipathHop[] | undefined, b: MultipathHop[] | undefined): boolean =>
  (a?.length ?? 0) === (b?.length ?? 0)
  && (a ?? []).every((h, i) => h.gateway === b![i]!.gateway && h.dev === b![i]!.dev && h.weight === b![i]!.weight);

/** canonicalRoute(a) equals canonicalRoute(b), field by field (this runs for every route of every cycle). */
export function sameRoute(a: Route, b: Route): boolean {
  if (a.table !== b.table || a.type !== b.type || a.protocol !== b.protocol || a.scope !== b.scope) return false;
  if ((canonicalPrefix(a.dst) ?? ALL) !== (canonicalPrefix(b.dst) ?? ALL)) return false;
  if ((a.metric || 0) !== (b.metric || 0) || (a.src || undefined) !== (b.src || undefined) || a.nhid !== b.nhid) return false;
  if (a.nhid !== undefined) return true; // the kernel echoes the nexthop's gateway/dev: not part of the route
  const aMulti = a.multipath !== undefined && a.multipath.length > 0;
  const bMulti = b.multipath !== undefined && b.multipath.length > 0;
  if (aMulti || bMulti) return aMulti && bMulti && sameHops(a.multipath, b.multipath);
  return (a.gateway || undefined) === (b.gateway || undefined) && (a.dev || undefined) === (b.dev || undefined)
    && Boolean(a.onlink) === Boolean(b.onlink);
}

/**
 * Every field but the protocol, normalised; rules have no other identity (they cannot be replaced).
 * Every selector the kernel reports counts (ipproto, port ranges, tos, dscp, l3mdev, and those uplinkd never
 * sets): a foreign rule differing only there is another rule, neither ours nor in the way of ours.
 */
export function canonicalRule(r: Rule): Rule {
  const c: Rule = { priority: r.priority, action: r.action, table: r.action === 'lookup' ? r.table : 0, protocol: r.protocol };
  const src = canonicalPrefix(r.src);
  if (src) c.src = src;
  const dst = canonicalPrefix(r.dst);
  if (dst) c.dst = dst;
  if (r.iif) c.iif = r.iif;
  if (r.oif) c.oif = r.oif;
  if (r.fwmark !== undefined && (r.fwmark !== 0 || (r.fwmask !== undefined && r.fwmask !== 0))) {
    c.fwmark = r.fwmark;
    if (r.fwmask !== undefined && r.fwmask !== U32_MAX) c.fwmask = r.fwmask;
  }
  if (r.suppressPrefixlen !== undefined && r.suppressPrefixlen !== U32_MAX && r.suppressPrefixlen >= 0) {
    c.suppressPrefixlen = r.suppressPrefixlen;
  }
  if (r.invert) c.invert = true;
  if (r.ipProto) c.ipProto = r.ipProto;
  if (r.sport) c.sport = { start: r.sport.start, end: r.sport.end };
  if (r.dport) c.dport = { start: r.dport.start, end: r.dport.end };
  if (r.tos) c.tos = r.tos;
  if (r.dscp !== undefined) c.dscp = r.dscp;
  if (r.l3mdev) c.l3mdev = true;
  if (r.unmodelled?.length) c.unmodelled = [...r.unmodelled].sort();
  return c;
}

/**
 * A rule's identity as a string: canonicalRule() without the protocol, JSON-encoded. Two rules with one key are one
 * rule to the kernel (a second add is EEXIST, fib_rules.c rule_exists()), whoever made them.
 */
export function ruleKey(r: Rule): string {
  const { protocol: _protocol, ...rest } = canonicalRule(r);
  return JSON.stringify(rest);
}

/**
 * The fields uplinkd sets on a nexthop, normalised: id and protocol, then either the group (members sorted by id,
 * NHA_GROUP; with NHA_RES_GROUP buckets and idle/unbalanced timers, in seconds as the config holds them), or
 * blackhole, or gateway, dev and onlink (include/uapi/linux/nexthop.h).
 */
export function canonicalNexthop(n: Nexthop): Nexthop {
  const c: Nexthop = { id: n.id, protocol: n.protocol };
  if (n.group) {
    c.group = [...n.group].sort((a, b) => a.id - b.id).map((m) => ({ id: m.id, weight: m.weight }));
    if (n.resilient) {
      c.resilient = { buckets: n.resilient.buckets, idleTimer: n.resilient.idleTimer, unbalancedTimer: n.resilient.unbalancedTimer };
    }
  } else if (n.blackhole) {
    c.blackhole = true;
  } else {
    if (n.gateway) c.gateway = n.gateway;
    if (n.dev) c.dev = n.dev;
    if (n.onlink) c.onlink = true;
  }
  return c;
}

/** canonicalNexthop(a) equals canonicalNexthop(b): replacing one with the other would change nothing. */
export function sameNexthop(a: Nexthop, b: Nexthop): boolean {
  return JSON.stringify(canonicalNexthop(a)) === JSON.stringify(canonicalNexthop(b));
}

/** An object uplinkd owns in the kernel, as a change names it (a Change is one of these plus its op). */
export type OwnedObject = { kind: 'route'; route: Route } | { kind: 'rule'; rule: Rule } | { kind: 'nexthop'; nexthop: Nexthop };

/**
 * The whole identity of an owned object: its kind and its canonical form (every field uplinkd sets, in a
 * fixed order; what the kernel adds dropped), e.g. `route {"table":1001,"dst":"0.0.0.0/0",...}`. Equal for
 * the object the planner wants and the one the kernel reports back, whatever the field order; a changed
 * gateway, weight or priority gives another identity. The daemon counts drift by it (src/daemon/daemon.ts)
 * and the conflict limiter keys restorations by it (src/daemon/conflict.ts).
 */
export function objectIdentity(o: OwnedObject): string {
  switch (o.kind) {
    case 'route':
      return `route ${JSON.stringify(canonicalRoute(o.route))}`;
    case 'rule':
      return `rule ${JSON.stringify(canonicalRule(o.rule))}`;
    case 'nexthop':
      return `nexthop ${JSON.stringify(canonicalNexthop(o.nexthop))}`;
  }
}

// ---- deterministic order ----

function ipNumber(ip: string | undefined): number {
  return ip === undefined ? -1 : parseIpv4(ip);
}

// Sorting thousands of routes compares the same prefixes again and again: parse each once.
const PREFIX_CACHE_LIMIT = 50_000;
const prefixCache = new Map<string, number>();

/** A prefix as one sortable number: address * 64 + length. */
function prefixOrder(p: string | undefined): number {
  const text = canonicalPrefix(p) ?? ALL;
  let order = prefixCache.get(text);
  if (order === undefined) {
    const [ip, len] = text.split('/') as [string, string | undefined];
    order = ipNumber(ip) * 64 + Number(len ?? 32);
    if (prefixCache.size >= PREFIX_CACHE_LIMIT) prefixCache.clear();
    prefixCache.set(text, order);
  }
  return order;
}

/** Orders IPv4 prefixes (`a.b.c.d/len`, undefined or `default` = 0.0.0.0/0) by address, then length; a negative number, 0 or a positive number. */
export function comparePrefixes(a: string | undefined, b: string | undefined): number {
  return prefixOrder(a) - prefixOrder(b);
}

/** Orders IPv4 addresses numerically (undefined first); a negative number, 0 or a positive number. */
export function compareIps(a: string | undefined, b: string | undefined): number {
  return ipNumber(a) - ipNumber(b);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Total order on routes: table, dst, metric, then the canonical form; plan() and diff() sort with it. */
export function compareRoutes(a: Route, b: Route): number {
  return a.table - b.table || comparePrefixes(a.dst, b.dst) || (a.metric ?? 0) - (b.metric ?? 0)
    || compareText(JSON.stringify(canonicalRoute(a)), JSON.stringify(canonicalRoute(b)));
}

/** Total order on rules: priority (the kernel's evaluation order), src, then the canonical form. */
export function compareRules(a: Rule, b: Rule): number {
  return a.priority - b.priority || comparePrefixes(a.src, b.src)
    || compareText(JSON.stringify(canonicalRule(a)), JSON.stringify(canonicalRule(b)));
}

/**
 * `routes` in compareRoutes' order, as a new array. The same order as `[...routes].sort(compareRoutes)` (both
 * sorts are stable), but each route's prefix is looked up once and its canonical JSON built only when two
 * routes tie on table, prefix and metric, instead of once per comparison.
 */
export function sortRoutes(routes: readonly Route[]): Route[] {
  const keyed = routes.map((route) => ({ route, prefix: prefixOrder(route.dst), metric: route.metric ?? 0, text: undefined as string | undefined }));
  const text = (k: (typeof keyed)[number]): string => (k.text ??= JSON.stringify(canonicalRoute(k.route)));
  keyed.sort((a, b) => a.route.table - b.route.table || a.prefix - b.prefix || a.metric - b.metric || compareText(text(a), text(b)));
  return keyed.map((k) => k.route);
}

/**
 * `rules` in compareRules' order, as a new array; as sortRoutes, each rule's key is built once (uplinkd's rules
 * tie on priority by the dozen: every `oif` rule has one priority, so compareRules would encode two rules per comparison).
 */
export function sortRules(rules: readonly Rule[]): Rule[] {
  const keyed = rules.map((rule) => ({ rule, src: prefixOrder(rule.src), text: undefined as string | undefined }));
  const text = (k: (typeof keyed)[number]): string => (k.text ??= JSON.stringify(canonicalRule(k.rule)));
  keyed.sort((a, b) => a.rule.priority - b.rule.priority || a.src - b.src || compareText(text(a), text(b)));
  return keyed.map((k) => k.rule);
}

/** Total order on nexthops: id, then the canonical form. */
export function compareNexthops(a: Nexthop, b: Nexthop): number {
  return a.id - b.id || compareText(JSON.stringify(canonicalNexthop(a)), JSON.stringify(canonicalNexthop(b)));
}
