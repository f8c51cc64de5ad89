// RTM_{NEW,DEL,GET}ROUTE: struct rtmsg + RTA_* attributes, RTA_MULTIPATH with struct rtnexthop.
import type { MultipathHop, Route, RouteScope, RouteType } from '../model/types';
import { UplinkdError } from '../errors';
import { parseCidr } from '../model/ipv4';
import * as C from './constants';
import type { IfNames } from './names';
import {
  align4, attr, eachAttr, ipv4At, ipv4Attr, malformed, requireLen, u32At, u32Attr,
} from './wire';

const TYPES: [RouteType, number][] = [
  ['unicast', C.RTN_UNICAST], ['local', C.RTN_LOCAL], ['broadcast', C.RTN_BROADCAST],
  ['blackhole', C.RTN_BLACKHOLE], ['unreachable', C.RTN_UNREACHABLE], ['prohibit', C.RTN_PROHIBIT],
];
const SCOPES: [RouteScope, number][] = [
  ['universe', C.RT_SCOPE_UNIVERSE], ['link', C.RT_SCOPE_LINK], ['host', C.RT_SCOPE_HOST],
];

function routeTypeNumber(t: RouteType): number {
  const n = TYPES.find(([name]) => name === t)?.[1];
  if (n === undefined) throw new UplinkdError('netlink', `cannot encode route type ${t}`);
  return n;
}
const routeTypeName = (n: number): RouteType => TYPES.find(([, v]) => v === n)?.[0] ?? 'other';
const scopeNumber = (s: RouteScope): number => SCOPES.find(([name]) => name === s)![1];
/** site (200) and nowhere (255) have no model name; they read as universe. */
export const scopeName = (n: number): RouteScope => SCOPES.find(([, v]) => v === n)?.[0] ?? 'universe';

function rtmsg(dstLen: number, table: number, protocol: number, scope: number, type: number, flags = 0): Buffer {
  const h = Buffer.alloc(C.RTMSG_LEN);
  h.writeUInt8(C.AF_INET, 0);
  h.writeUInt8(dstLen, 1);
  // rtm_table is a u8: bigger tables go in RTA_TABLE only (which we always send).
  h.writeUInt8(table < 256 ? table : C.RT_TABLE_UNSPEC, 4);
  h.writeUInt8(protocol, 5);
  h.writeUInt8(scope, 6);
  h.writeUInt8(type, 7);
  h.writeUInt32LE(flags, 8);
  return h;
}

function encodeHop(hop: MultipathHop, names: IfNames): Buffer {
  if (!Number.isInteger(hop.weight) || hop.weight < 1 || hop.weight > 256) {
    throw new UplinkdError('netlink', `multipath weight ${hop.weight} is outside 1..256`);
  }
  const attrs = hop.gateway ? ipv4Attr(C.RTA_GATEWAY, hop.gateway) : Buffer.alloc(0);
  const h = Buffer.alloc(C.RTNH_LEN);
  h.writeUInt16LE(C.RTNH_LEN + attrs.length, 0);
  h.writeUInt8(0, 2); // rtnh_flags
  h.writeUInt8(hop.weight - 1, 3); // rtnh_hops is weight-1
  h.writeInt32LE(names.indexOf(hop.dev), 4);
  return Buffer.concat([h, attrs]);
}

/**
 * Payload for RTM_NEWROUTE / RTM_DELROUTE. For a delete the scope is sent as "nowhere"
 * (match any), as iproute2 does; everything else given must match.
 */
export function encodeRoute(r: Route, names: IfNames, forDelete = false): Buffer {
  const { ip, prefixlen: len } = parseCidr(r.dst);
  const scope = forDelete ? C.RT_SCOPE_NOWHERE : scopeNumber(r.scope);
  const attrs: Buffer[] = [u32Attr(C.RTA_TABLE, r.table)];
  if (len > 0) attrs.push(ipv4Attr(C.RTA_DST, ip));
  if (r.metric !== undefined) attrs.push(u32Attr(C.RTA_PRIORITY, r.metric));
  if (r.src !== undefined) attrs.push(ipv4Attr(C.RTA_PREFSRC, r.src));
  if (r.nhid !== undefined) {
    attrs.push(u32Attr(C.RTA_NH_ID, r.nhid));
  } else if (r.multipath && r.multipath.length > 0) {
    attrs.push(attr(C.RTA_MULTIPATH, Buffer.concat(r.multipath.map((h) => encodeHop(h, names)))));
  } else {
    if (r.gateway !== undefined) attrs.push(ipv4Attr(C.RTA_GATEWAY, r.gateway));
    if (r.dev !== undefined) attrs.push(u32Attr(C.RTA_OIF, names.indexOf(r.dev)));
  }
  const flags = r.onlink && r.gateway !== undefined && r.nhid === undefined && !r.multipath?.length ? C.RTNH_F_ONLINK : 0;
  return Buffer.concat([rtmsg(len, r.table, r.protocol, scope, routeTypeNumber(r.type), flags), ...attrs]);
}

/** What a filtered RTM_GETROUTE dump returns: only routes with all of the given fields. */
export interface RouteDumpFilter {
  /** Only this table (rtm_table and RTA_TABLE). */
  table?: number;
  /** Only routes of this protocol (rtm_protocol), 1..255. */
  protocol?: number;
  /** Only routes using this interface (RTA_OIF, an ifindex): directly, in a multipath hop or through their nexthop object. */
  oif?: number;
}

/**
 * Payload for an RTM_GETROUTE dump of IPv4 routes: all of them, or those `filter` selects. The kernel
 * applies the filter on a socket with NETLINK_GET_STRICT_CHK (ip_valid_fib_dump_req in
 * net/ipv4/fib_frontend.c, fn_trie_dump_leaf in net/ipv4/fib_trie.c): only the selected routes are
 * sent, and a filtered dump of a table that does not exist fails with ENOENT. Without strict checking
 * the filter is ignored and every route comes back.
 */
export function encodeRouteDumpRequest(filter: RouteDumpFilter = {}): Buffer {
  const attrs: Buffer[] = [];
  if (filter.table !== undefined) attrs.push(u32Attr(C.RTA_TABLE, filter.table));
  if (filter.oif !== undefined) attrs.push(u32Attr(C.RTA_OIF, filter.oif));
  return Buffer.concat([rtmsg(0, filter.table ?? C.RT_TABLE_UNSPEC, filter.protocol ?? 0, 0, 0), ...attrs]);
}

/** The fields of an RTM_NEWROUTE payload that say whether it concerns us, read without decoding it (undefined when not IPv4 or too short). */
export interface RouteHead {
  table: number;
  dst: string;
  protocol: number;
}

/**
 * Reads table, protocol and (for a default route only) the destination of a route payload without
 * decoding it: a dump of a million-route table is mostly skipped on these. `dst` is '0.0.0.0/0' for
 * a default route and '' otherwise. Never throws: a broken payload reads as undefined.
 */
export function peekRoute(payload: Buffer): RouteHead | undefined {
  if (payload.length < C.RTMSG_LEN || payload.readUInt8(0) !== C.AF_INET) return undefined;
  let table = payload.readUInt8(4);
  if (table === C.RT_TABLE_COMPAT) {
    try {
      eachAttr(payload, C.RTMSG_LEN, (type, off, len) => {
        if (type === C.RTA_TABLE && len >= 4) table = payload.readUInt32LE(off);
      });
    } catch {
      return undefined;
    }
  }
  return { table, dst: payload.readUInt8(1) === 0 ? '0.0.0.0/0' : '', protocol: payload.readUInt8(5) };
}

function decodeMultipath(buf: Buffer, start: number, end: number, names: IfNames): { hops: MultipathHop[]; allDown: boolean } {
  const hops: MultipathHop[] = [];
  let allDown = true;
  let off = start;
  while (off + C.RTNH_LEN <= end) {
    const len = buf.readUInt16LE(off);
    if (len < C.RTNH_LEN || off + len > end) throw malformed(`rtnexthop length ${len}`);
    if ((buf.readUInt8(off + 2) & (C.RTNH_F_LINKDOWN | C.RTNH_F_DEAD)) === 0) allDown = false;
    const hop: MultipathHop = { dev: names.nameOf(buf.readInt32LE(off + 4)), weight: buf.readUInt8(off + 3) + 1 };
    eachAttr(buf, off + C.RTNH_LEN, (type, o, l) => {
      if (type === C.RTA_GATEWAY) hop.gateway = ipv4At(buf, o, l, 'RTA_GATEWAY in nexthop');
    }, off + len);
    hops.push(hop);
    off += align4(len);
  }
  return { hops, allDown: allDown && hops.length > 0 };
}

/**
 * Decode an RTM_NEWROUTE/DELROUTE payload; undefined for non-IPv4 families.
 * A route using a nexthop object (RTA_NH_ID) reads as just its nhid: the kernel also reports
 * the resolved gateway/dev/multipath for old tools, which would otherwise look like a difference.
 * `linkdown` is set when the route's (or every hop's) nexthop is LINKDOWN or DEAD.
 */
export function decodeRoute(payload: Buffer, names: IfNames): Route | undefined {
  requireLen(payload, C.RTMSG_LEN, 'rtmsg');
  if (payload.readUInt8(0) !== C.AF_INET) return undefined;
  let table = payload.readUInt8(4);
  let dst = '0.0.0.0';
  let metric: number | undefined;
  let src: string | undefined;
  let gateway: string | undefined;
  let oif: number | undefined;
  let nhid: number | undefined;
  let mpOff = -1;
  let mpLen = 0;
  eachAttr(payload, C.RTMSG_LEN, (type, off, len) => {
    switch (type) {
      case C.RTA_TABLE: table = u32At(payload, off, len, 'RTA_TABLE'); break;
      case C.RTA_DST: dst = ipv4At(payload, off, len, 'RTA_DST'); break;
      case C.RTA_PRIORITY: metric = u32At(payload, off, len, 'RTA_PRIORITY'); break;
      case C.RTA_PREFSRC: src = ipv4At(payload, off, len, 'RTA_PREFSRC'); break;
      case C.RTA_GATEWAY: gateway = ipv4At(payload, off, len, 'RTA_GATEWAY'); break;
      case C.RTA_OIF: oif = u32At(payload, off, len, 'RTA_OIF'); break;
      case C.RTA_NH_ID: nhid = u32At(payload, off, len, 'RTA_NH_ID'); break;
      case C.RTA_MULTIPATH: mpOff = off; mpLen = len; break;
    }
  });
  const route: Route = {
    table,
    dst: `${dst}/${payload.readUInt8(1)}`,
    type: routeTypeName(payload.readUInt8(7)),
    protocol: payload.readUInt8(5),
    scope: scopeName(payload.readUInt8(6)),
  };
  if (metric !== undefined) route.metric = metric;
  if (src !== undefined) route.src = src;
  const flags = payload.readUInt32LE(8);
  let down = (flags & (C.RTNH_F_LINKDOWN | C.RTNH_F_DEAD)) !== 0;
  if (nhid !== undefined) {
    route.nhid = nhid;
  } else if (mpOff >= 0) {
    const { hops, allDown } = decodeMultipath(payload, mpOff, mpOff + mpLen, names);
    route.multipath = hops;
    down = down || allDown;
  } else {
    if (gateway !== undefined) route.gateway = gateway;
    if (oif !== undefined) route.dev = names.nameOf(oif);
    if (flags & C.RTNH_F_ONLINK) route.onlink = true;
  }
  if (down) route.linkdown = true;
  return route;
}
