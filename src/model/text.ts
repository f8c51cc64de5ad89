// iproute2-like text for kernel objects, both ways.
// format*: the argument part of an `ip route|rule|nexthop` command (valid when pasted after
// `ip route add`, etc.); formatChange: the whole command. parseSnapshot: a line-per-object
// description of kernel state, written by unit tests to build the fake kernel's state (test/support/fake-port.ts).
import { UplinkdError } from '../errors';
import { isCidr, isIpv4 } from './ipv4';
import type {
  Address, Change, KernelState, Link, MultipathHop, Nexthop, NexthopGroupMember, PortRange, Route, RouteScope, RouteType, Rule,
} from './types';

const TABLE_NAMES: [string, number][] = [['main', 254], ['local', 255], ['default', 253]];
// The names every iproute2 knows without /etc/iproute2/rt_protos.
const PROTOCOL_NAMES: [string, number][] = [['unspec', 0], ['redirect', 1], ['kernel', 2], ['boot', 3], ['static', 4], ['ra', 9], ['dhcp', 16]];
const ROUTE_TYPES: RouteType[] = ['unicast', 'local', 'broadcast', 'blackhole', 'unreachable', 'prohibit'];
const RULE_ACTIONS = ['blackhole', 'unreachable', 'prohibit'] as const;

/** The default route's destination as the model writes it (iproute2 prints and accepts `default`). */
export const DEFAULT_DST = '0.0.0.0/0';

function fail(message: string): never {
  throw new UplinkdError('usage', message);
}

/** A table number as iproute2 prints it: `main` (254), `local` (255), `default` (253), else the number. */
export function formatTable(n: number): string {
  return TABLE_NAMES.find(([, v]) => v === n)?.[0] ?? String(n);
}

/** Inverse of formatTable(): `main`, `local`, `default` or a number (decimal or 0x hex, < 2^32). Throws UplinkdError('usage') otherwise. */
export function parseTable(text: string): number {
  const named = TABLE_NAMES.find(([name]) => name === text);
  return named ? named[1] : parseUint(text, 'table');
}

/** A route/rule/nexthop protocol (rtm_protocol, include/uapi/linux/rtnetlink.h RTPROT_*) by the name every iproute2 knows, else the number. */
export function formatProtocol(n: number): string {
  return PROTOCOL_NAMES.find(([, v]) => v === n)?.[0] ?? String(n);
}

/** Inverse of formatProtocol(): an RTPROT_* name (`kernel`, `boot`, `static`, `dhcp`, ...) or a number. Throws UplinkdError('usage') otherwise. */
export function parseProtocol(text: string): number {
  const named = PROTOCOL_NAMES.find(([name]) => name === text);
  return named ? named[1] : parseUint(text, 'protocol');
}

function parseUint(text: string, what: string): number {
  if (!/^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(text)) fail(`not a number for ${what}: '${text}'`);
  const n = Number(text);
  if (n > 0xffffffff) fail(`${what} out of range: '${text}'`);
  return n;
}

function parseAddress(text: string, what: string): string {
  if (!isIpv4(text)) fail(`not an IPv4 address for ${what}: '${text}'`);
  return text;
}

/** "default", "a.b.c.d/len" or a bare address (a /32). */
function parsePrefix(text: string): string {
  if (text === 'default' || text === 'all') return DEFAULT_DST;
  if (isIpv4(text)) return `${text}/32`;
  if (!isCidr(text)) fail(`not an IPv4 prefix: '${text}'`);
  return text;
}

function formatDst(dst: string): string {
  return dst === DEFAULT_DST ? 'default' : dst;
}

function formatScope(s: RouteScope): string {
  return s === 'universe' ? 'global' : s;
}

function parseScope(text: string): RouteScope {
  if (text === 'global' || text === 'universe') return 'universe';
  if (text === 'link' || text === 'host') return text;
  return fail(`unknown scope '${text}'`);
}

// ---- formatting ----

/**
 * A route as the arguments of `ip route add` (iproute2 order: type, dst, nhid | via/dev/onlink, src, scope, table,
 * proto, metric, then `nexthop` hops last). Only what the model holds; a route via a nexthop object prints its
 * nhid, not the gateway the kernel echoes.
 */
export function formatRoute(r: Route): string {
  const parts: string[] = [];
  if (r.type !== 'unicast' && r.type !== 'other') parts.push(r.type);
  parts.push(formatDst(r.dst));
  // A route through a nexthop object is just its nhid: what the kernel echoes of it is not part of the command.
  if (r.nhid !== undefined) parts.push('nhid', String(r.nhid));
  if (r.gateway !== undefined && r.nhid === undefined) parts.push('via', r.gateway);
  if (r.dev !== undefined && r.nhid === undefined) parts.push('dev', r.dev);
  if (r.onlink && r.nhid === undefined) parts.push('onlink');
  if (r.src !== undefined) parts.push('src', r.src);
  if (r.scope !== 'universe') parts.push('scope', formatScope(r.scope));
  parts.push('table', formatTable(r.table), 'proto', formatProtocol(r.protocol));
  if (r.metric !== undefined && r.metric !== 0) parts.push('metric', String(r.metric));
  // iproute2 wants the hops last.
  for (const hop of r.nhid === undefined ? r.multipath ?? [] : []) {
    parts.push('nexthop');
    if (hop.gateway !== undefined) parts.push('via', hop.gateway);
    parts.push('dev', hop.dev, 'weight', String(hop.weight));
  }
  return parts.join(' ');
}

/**
 * A rule as the arguments of `ip rule add`: `[not] from P [to P] [iif|oif|fwmark|tos|dscp|ipproto|sport|dport|l3mdev]
 * lookup T|ACTION [suppress_prefixlength N] priority N protocol P`; selectors uplinkd does not model print as
 * `[name]` (not valid for `ip`, shown for people).
 */
export function formatRule(r: Rule): string {
  const parts: string[] = [];
  if (r.invert) parts.push('not');
  parts.push('from', r.src === undefined || r.src === DEFAULT_DST ? 'all' : r.src);
  if (r.dst !== undefined && r.dst !== DEFAULT_DST) parts.push('to', r.dst);
  if (r.iif !== undefined) parts.push('iif', r.iif);
  if (r.oif !== undefined) parts.push('oif', r.oif);
  if (r.fwmark !== undefined) parts.push('fwmark', r.fwmask !== undefined ? `0x${r.fwmark.toString(16)}/0x${r.fwmask.toString(16)}` : `0x${r.fwmark.toString(16)}`);
  if (r.tos) parts.push('tos', `0x${r.tos.toString(16).padStart(2, '0')}`);
  if (r.dscp !== undefined) parts.push('dscp', String(r.dscp));
  if (r.ipProto !== undefined) parts.push('ipproto', formatIpProto(r.ipProto));
  if (r.sport !== undefined) parts.push('sport', formatPortRange(r.sport));
  if (r.dport !== undefined) parts.push('dport', formatPortRange(r.dport));
  if (r.l3mdev) parts.push('l3mdev');
  for (const u of r.unmodelled ?? []) parts.push(`[${u}]`);
  if (r.action === 'lookup') {
    if (!r.l3mdev || r.table !== 0) parts.push('lookup', formatTable(r.table));
  } else if (r.action !== 'other') parts.push(r.action);
  if (r.suppressPrefixlen !== undefined) parts.push('suppress_prefixlength', String(r.suppressPrefixlen));
  parts.push('priority', String(r.priority), 'protocol', formatProtocol(r.protocol));
  return parts.join(' ');
}

/** iproute2 names of the protocols a rule's ipproto can name (/etc/protocols); others as numbers. */
const IP_PROTOS: [string, number][] = [['icmp', 1], ['tcp', 6], ['udp', 17], ['sctp', 132]];

/** A rule's ipproto (FRA_IP_PROTO, an IANA protocol number) by the name `ip rule` accepts for tcp, udp, icmp, sctp, else the number. */
export function formatIpProto(n: number): string {
  return IP_PROTOS.find(([, v]) => v === n)?.[0] ?? String(n);
}

/** `N` or `START-END`, as `ip rule ... dport` takes it. */
export function formatPortRange(p: PortRange): string {
  return p.start === p.end ? String(p.start) : `${p.start}-${p.end}`;
}

function parsePortRange(text: string, what: string): PortRange {
  const [a, b] = text.split('-');
  const start = parseUint(a!, what);
  return { start, end: b === undefined ? start : parseUint(b, what) };
}

function formatGroup(members: NexthopGroupMember[]): string {
  return members.map((m) => `${m.id},${m.weight}`).join('/');
}

/** A nexthop as the arguments of `ip nexthop add`: `id N` then `group ID,W/... [type resilient buckets N idle_timer S unbalanced_timer S]` (timers in seconds), `blackhole`, or `via/dev/onlink`, then `proto P`. */
export function formatNexthop(n: Nexthop): string {
  const parts = ['id', String(n.id)];
  if (n.group !== undefined) {
    parts.push('group', formatGroup(n.group));
    if (n.resilient) {
      parts.push('type', 'resilient', 'buckets', String(n.resilient.buckets), 'idle_timer', String(n.resilient.idleTimer),
        'unbalanced_timer', String(n.resilient.unbalancedTimer));
    }
  } else if (n.blackhole) {
    parts.push('blackhole');
  } else {
    if (n.gateway !== undefined) parts.push('via', n.gateway);
    if (n.dev !== undefined) parts.push('dev', n.dev);
    if (n.onlink) parts.push('onlink');
  }
  parts.push('proto', formatProtocol(n.protocol));
  return parts.join(' ');
}

/** The `ip` command that makes this change. */
export function formatChange(c: Change): string {
  switch (c.kind) {
    case 'route':
      return `ip route ${c.op} ${formatRoute(c.route)}`;
    case 'rule':
      return `ip rule ${c.op} ${formatRule(c.rule)}`;
    case 'nexthop':
      return c.op === 'del' ? `ip nexthop del id ${c.nexthop.id}` : `ip nexthop ${c.op} ${formatNexthop(c.nexthop)}`;
  }
}

/** A link as a snapshot line: `link NAME up|down [lower_up] [pointopoint] [kind K] index N`. */
export function formatLink(l: Link): string {
  const parts = ['link', l.name, l.up ? 'up' : 'down'];
  if (l.lowerUp) parts.push('lower_up');
  if (l.pointToPoint) parts.push('pointopoint');
  if (l.kind !== undefined) parts.push('kind', l.kind);
  parts.push('index', String(l.index));
  return parts.join(' ');
}

/** An address as a snapshot line: `addr DEV A/LEN` (or `A peer P/LEN`) `[dynamic] [secondary] [scope S]`. */
export function formatAddress(a: Address): string {
  const parts = a.peer !== undefined ? ['addr', a.dev, a.address, 'peer', `${a.peer}/${a.prefixlen}`] : ['addr', a.dev, `${a.address}/${a.prefixlen}`];
  if (a.dynamic) parts.push('dynamic');
  if (a.secondary) parts.push('secondary');
  if (a.scope !== 'universe') parts.push('scope', a.scope);
  return parts.join(' ');
}

/** The snapshot text of a kernel state; parseSnapshot(formatSnapshot(s)) gives s back. */
export function formatSnapshot(s: KernelState): string {
  return [
    ...s.links.map(formatLink),
    ...s.addresses.map(formatAddress),
    ...s.routes.map((r) => `route ${formatRoute(r)}`),
    ...s.rules.map((r) => `rule ${formatRule(r)}`),
    ...s.nexthops.map((n) => `nexthop ${formatNexthop(n)}`),
  ].join('\n');
}

// ---- parsing ----

/** Walks the words of one line; `next(what)` fails with a message naming the missing value. */
class Words {
  private i = 0;
  constructor(private readonly words: string[]) {}
  more(): boolean {
    return this.i < this.words.length;
  }
  take(): string {
    return this.words[this.i++]!;
  }
  next(what: string): string {
    if (!this.more()) fail(`missing value after '${what}'`);
    return this.take();
  }
}

function parseLink(w: Words, index: number): Link {
  const link: Link = { index, name: w.next('link'), up: false, lowerUp: false };
  while (w.more()) {
    const word = w.take();
    if (word === 'up') link.up = true;
    else if (word === 'down') link.up = false;
    else if (word === 'lower_up') link.lowerUp = true;
    else if (word === 'no_carrier' || word === 'no-carrier') link.lowerUp = false;
    else if (word === 'kind') link.kind = w.next(word);
    else if (word === 'pointopoint') link.pointToPoint = true;
    else if (word === 'index') link.index = parseUint(w.next(word), 'index');
    else fail(`unknown link word '${word}'`);
  }
  return link;
}

function parseAddr(w: Words): Address {
  const dev = w.next('addr');
  let cidr = w.next('addr device');
  // `addr ppp0 A peer P/len`: the prefix length belongs to the peer, as in `ip address`.
  let peer: string | undefined;
  if (isIpv4(cidr)) {
    if (w.next(cidr) !== 'peer') fail(`address needs a prefix length or 'peer P/len': '${cidr}'`);
    const p = w.next('peer');
    if (!isCidr(p)) fail(`peer needs a prefix length: '${p}'`);
    peer = p.split('/')[0];
    cidr = `${cidr}/${p.split('/')[1]}`;
  }
  if (!isCidr(cidr)) fail(`address needs a prefix length: '${cidr}'`);
  const [address, len] = cidr.split('/') as [string, string];
  const a: Address = { dev, address, prefixlen: Number(len), dynamic: false, secondary: false, scope: 'universe' };
  if (peer !== undefined) a.peer = peer;
  while (w.more()) {
    const word = w.take();
    if (word === 'dynamic') a.dynamic = true;
    else if (word === 'secondary') a.secondary = true;
    else if (word === 'scope') a.scope = parseScope(w.next(word));
    else fail(`unknown addr word '${word}'`);
  }
  return a;
}

/**
 * Parses the arguments of `ip route add` (what formatRoute() writes, and the iproute2 spellings it accepts:
 * `default`/`all`, a bare address as /32, `global`/`universe`). Defaults as iproute2's: table main, protocol boot,
 * scope as defaultScope() (host for local, link for broadcast and direct unicast, else global). Throws UplinkdError('usage') naming the word it cannot read.
 */
export function parseRoute(text: string): Route {
  const w = new Words(words(text));
  let dst: string | undefined;
  let type: RouteType = 'unicast';
  let scope: RouteScope | undefined;
  const r: Omit<Route, 'dst' | 'type' | 'scope'> = { table: 254, protocol: 3 };
  const hops: MultipathHop[] = [];
  let hop: MultipathHop | undefined;
  while (w.more()) {
    const word = w.take();
    switch (word) {
      case 'table': r.table = parseTable(w.next(word)); break;
      case 'via': {
        const gw = parseAddress(w.next(word), word);
        if (hop) hop.gateway = gw;
        else r.gateway = gw;
        break;
      }
      case 'dev': case 'oif': {
        const dev = w.next(word);
        if (hop) hop.dev = dev;
        else r.dev = dev;
        break;
      }
      case 'weight':
        if (!hop) fail(`'weight' outside a nexthop`);
        hop.weight = parseUint(w.next(word), word);
        break;
      case 'nexthop':
        hop = { dev: '', weight: 1 };
        hops.push(hop);
        break;
      case 'src': r.src = parseAddress(w.next(word), word); break;
      case 'scope': scope = parseScope(w.next(word)); break;
      case 'proto': case 'protocol': r.protocol = parseProtocol(w.next(word)); break;
      case 'metric': case 'priority': case 'preference': r.metric = parseUint(w.next(word), word); break;
      case 'nhid': r.nhid = parseUint(w.next(word), word); break;
      case 'type': type = parseRouteType(w.next(word)); break;
      case 'linkdown': case 'dead': r.linkdown = true; break;
      case 'onlink': r.onlink = true; break;
      default:
        if ((ROUTE_TYPES as string[]).includes(word)) type = word as RouteType;
        else if (dst === undefined) dst = parsePrefix(word);
        else fail(`unknown route word '${word}'`);
    }
  }
  if (dst === undefined) fail(`route without a destination: '${text}'`);
  if (hops.some((h) => h.dev === '')) fail(`nexthop without dev: '${text}'`);
  if (hops.length > 0) r.multipath = hops;
  return { ...r, dst, type, scope: scope ?? defaultScope(type, r) };
}

function parseRouteType(text: string): RouteType {
  if (!(ROUTE_TYPES as string[]).includes(text)) fail(`unknown route type '${text}'`);
  return text as RouteType;
}

/** iproute2's default: host for local, link for broadcast and direct unicast, else global. */
function defaultScope(type: RouteType, r: Pick<Route, 'gateway' | 'nhid' | 'multipath'>): RouteScope {
  if (type === 'local') return 'host';
  if (type === 'broadcast') return 'link';
  if (type === 'unicast' && r.gateway === undefined && r.nhid === undefined && r.multipath === undefined) return 'link';
  return 'universe';
}

/** Parses the arguments of `ip rule add` (what formatRule() writes); protocol defaults to 0 as in iproute2. Throws UplinkdError('usage') naming the word it cannot read. */
export function parseRule(text: string): Rule {
  const w = new Words(words(text));
  const r: Rule = { priority: 0, action: 'lookup', table: 0, protocol: 0 };
  let lookup = false;
  while (w.more()) {
    const word = w.take();
    switch (word) {
      case 'not': r.invert = true; break;
      case 'from': { const v = parsePrefix(w.next(word)); if (v !== DEFAULT_DST) r.src = v; break; }
      case 'to': { const v = parsePrefix(w.next(word)); if (v !== DEFAULT_DST) r.dst = v; break; }
      case 'iif': r.iif = w.next(word); break;
      case 'oif': r.oif = w.next(word); break;
      case 'fwmark': {
        const [mark, mask] = w.next(word).split('/');
        r.fwmark = parseUint(mark!, word);
        if (mask !== undefined) r.fwmask = parseUint(mask, word);
        break;
      }
      case 'lookup': case 'table': r.table = parseTable(w.next(word)); lookup = true; break;
      case 'suppress_prefixlength': r.suppressPrefixlen = parseUint(w.next(word), word); break;
      case 'ipproto': {
        const v = w.next(word);
        r.ipProto = IP_PROTOS.find(([name]) => name === v)?.[1] ?? parseUint(v, word);
        break;
      }
      case 'sport': r.sport = parsePortRange(w.next(word), word); break;
      case 'dport': r.dport = parsePortRange(w.next(word), word); break;
      case 'tos': case 'dsfield': { const v = parseUint(w.next(word), word); if (v !== 0) r.tos = v; break; }
      case 'dscp': r.dscp = parseUint(w.next(word), word); break;
      case 'l3mdev': r.l3mdev = true; lookup = true; break; // the VRF's table is the lookup
      case 'priority': case 'pref': case 'prio': r.priority = parseUint(w.next(word), word); break;
      case 'protocol': case 'proto': r.protocol = parseProtocol(w.next(word)); break;
      default: {
        const action = RULE_ACTIONS.find((a) => a === word);
        if (action) r.action = action;
        else if (/^[0-9]+:?$/.test(word)) r.priority = parseUint(word.replace(':', ''), 'priority');
        else fail(`unknown rule word '${word}'`);
      }
    }
  }
  if (r.action === 'lookup' && !lookup) fail(`rule without an action (lookup TABLE, blackhole, ...): '${text}'`);
  return r;
}

function parseGroup(text: string): NexthopGroupMember[] {
  return text.split('/').map((m) => {
    const [id, weight] = m.split(',');
    return { id: parseUint(id!, 'group id'), weight: weight === undefined ? 1 : parseUint(weight, 'group weight') };
  });
}

/** Parses the arguments of `ip nexthop add` (what formatNexthop() writes); protocol defaults to boot. Throws UplinkdError('usage') naming the word it cannot read. */
export function parseNexthop(text: string): Nexthop {
  const w = new Words(words(text));
  const n: Nexthop = { id: 0, protocol: 3 };
  let resilient = false;
  const res = { buckets: 128, idleTimer: 120, unbalancedTimer: 0 }; // the kernel's defaults
  while (w.more()) {
    const word = w.take();
    switch (word) {
      case 'id': n.id = parseUint(w.next(word), word); break;
      case 'via': n.gateway = parseAddress(w.next(word), word); break;
      case 'dev': n.dev = w.next(word); break;
      case 'blackhole': n.blackhole = true; break;
      case 'group': n.group = parseGroup(w.next(word)); break;
      case 'type': {
        const t = w.next(word);
        if (t === 'resilient') resilient = true;
        else if (t !== 'mpath') fail(`unknown nexthop group type '${t}'`);
        break;
      }
      case 'buckets': res.buckets = parseUint(w.next(word), word); break;
      case 'idle_timer': res.idleTimer = parseUint(w.next(word), word); break;
      case 'unbalanced_timer': res.unbalancedTimer = parseUint(w.next(word), word); break;
      case 'proto': case 'protocol': n.protocol = parseProtocol(w.next(word)); break;
      // What `ip nexthop show` prints besides: derived, not set by anyone.
      case 'scope': case 'unbalanced_time': w.next(word); break;
      case 'onlink': n.onlink = true; break;
      default: fail(`unknown nexthop word '${word}'`);
    }
  }
  if (n.id === 0) fail(`nexthop without an id: '${text}'`);
  if (resilient) {
    if (!n.group) fail(`resilient nexthop without a group: '${text}'`);
    n.resilient = res;
  }
  return n;
}

function words(text: string): string[] {
  return text.trim().split(/\s+/).filter((s) => s !== '');
}

/**
 * Kernel state from snapshot text, one object per line:
 *   link if1 up lower_up [kind vlan] [index 3]
 *   addr vlan102 192.0.2.7/24 [dynamic] [secondary] [scope link]
 *   addr ppp0 100.64.7.2 peer 10.64.0.1/32 [dynamic]
 *   link ppp0 up lower_up pointopoint
 *   route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20
 *   rule 10100 from 198.51.100.2/32 lookup 1001 protocol 117
 *   nexthop id 1001 via 198.51.100.1 dev if1 proto 117
 * Blank lines and `#` comments are ignored. Unnumbered links are indexed in order from 1.
 * Defaults as in iproute2: route table main, protocol boot; rule protocol 0.
 */
export function parseSnapshot(text: string): KernelState {
  const state: KernelState = { links: [], addresses: [], routes: [], rules: [], nexthops: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const space = line.search(/\s/);
    const head = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    try {
      switch (head) {
        case 'link': state.links.push(parseLink(new Words(words(rest)), state.links.length + 1)); break;
        case 'addr': case 'address': state.addresses.push(parseAddr(new Words(words(rest)))); break;
        case 'route': state.routes.push(parseRoute(rest)); break;
        case 'rule': state.rules.push(parseRule(rest)); break;
        case 'nexthop': state.nexthops.push(parseNexthop(rest)); break;
        default: fail(`unknown object '${head}' (link, addr, route, rule, nexthop)`);
      }
    } catch (e) {
      if (e instanceof UplinkdError) throw new UplinkdError('usage', `snapshot line ${i + 1}: ${e.message}`);
      throw e;
    }
  });
  return state;
}

/** 0x00010000: marks and masks as nft and `ip rule` print them. */
export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
