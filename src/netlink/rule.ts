// RTM_{NEW,DEL,GET}RULE: struct fib_rule_hdr + FRA_* attributes (linux/fib_rules.h).
import { MAX_RULE_PORT, type PortRange, type Rule, type RuleAction } from '../model/types';
import { UplinkdError } from '../errors';
import { parseCidr } from '../model/ipv4';
import * as C from './constants';
import {
  attr, attrMap, ipv4Attr, malformed, ipv4Cidr, readStr, readU32, readU8, requireLen, strAttr, u32Attr, u8Attr,
} from './wire';

const ACTIONS: [RuleAction, number][] = [
  ['lookup', C.FR_ACT_TO_TBL], ['blackhole', C.FR_ACT_BLACKHOLE],
  ['unreachable', C.FR_ACT_UNREACHABLE], ['prohibit', C.FR_ACT_PROHIBIT],
];
/** FRA_SUPPRESS_PREFIXLEN's "unset" value (-1 as u32). */
const SUPPRESS_UNSET = 0xffffffff;

/** Attributes that select packets but that uplinkd never sets: kept as text so such a rule is never mistaken for one of ours. */
const UNMODELLED = new Map<number, string>([
  [C.FRA_GOTO, 'goto'], [C.FRA_FLOW, 'realms'], [C.FRA_TUN_ID, 'tun_id'], [C.FRA_SUPPRESS_IFGROUP, 'suppress_ifgroup'],
  [C.FRA_UID_RANGE, 'uidrange'], [C.FRA_FLOWLABEL, 'flowlabel'], [C.FRA_FLOWLABEL_MASK, 'flowlabel_mask'],
  [C.FRA_SPORT_MASK, 'sport_mask'], [C.FRA_DPORT_MASK, 'dport_mask'], [C.FRA_DSCP_MASK, 'dscp_mask'],
]);
/** FRA_SPORT_MASK/FRA_DPORT_MASK (u16) matching every bit of the port. */
const isFullPortMask = (v: Buffer): boolean => v.length >= 2 && v.readUInt16LE(0) === 0xffff;
const isSinglePort = (r: { start: number; end: number } | undefined): boolean => r !== undefined && r.start === r.end;

/** FRA_DSCP_MASK covering all six DSCP bits. */
const DSCP_FULL_MASK = 0x3f;
/** FRA_SUPPRESS_IFGROUP's "unset" value (-1 as u32). */
const IFGROUP_UNSET = 0xffffffff;

function fibRuleHdr(srcLen: number, dstLen: number, table: number, action: number, flags: number, tos = 0): Buffer {
  const h = Buffer.alloc(C.FIB_RULE_HDR_LEN);
  h.writeUInt8(C.AF_INET, 0);
  h.writeUInt8(dstLen, 1);
  h.writeUInt8(srcLen, 2);
  h.writeUInt8(tos, 3);
  h.writeUInt8(table < 256 ? table : C.RT_TABLE_UNSPEC, 4); // u8; FRA_TABLE carries the real one
  h.writeUInt8(action, 7);
  h.writeUInt32LE(flags, 8);
  return h;
}

/** Payload for RTM_NEWRULE / RTM_DELRULE (the kernel matches a delete on the same fields). */
export function encodeRule(r: Rule): Buffer {
  const action = ACTIONS.find(([name]) => name === r.action)?.[1];
  if (action === undefined) throw new UplinkdError('netlink', `cannot encode rule action ${r.action}`);
  const src = r.src !== undefined ? parseCidr(r.src) : undefined;
  const dst = r.dst !== undefined ? parseCidr(r.dst) : undefined;
  const attrs: Buffer[] = [u32Attr(C.FRA_PRIORITY, r.priority), u8Attr(C.FRA_PROTOCOL, r.protocol)];
  if (r.action === 'lookup') attrs.push(u32Attr(C.FRA_TABLE, r.table));
  if (src && src.prefixlen > 0) attrs.push(ipv4Attr(C.FRA_SRC, src.ip));
  if (dst && dst.prefixlen > 0) attrs.push(ipv4Attr(C.FRA_DST, dst.ip));
  if (r.iif !== undefined) attrs.push(strAttr(C.FRA_IIFNAME, r.iif));
  if (r.oif !== undefined) attrs.push(strAttr(C.FRA_OIFNAME, r.oif));
  if (r.fwmark !== undefined) attrs.push(u32Attr(C.FRA_FWMARK, r.fwmark));
  if (r.fwmask !== undefined) attrs.push(u32Attr(C.FRA_FWMASK, r.fwmask));
  if (r.suppressPrefixlen !== undefined) attrs.push(u32Attr(C.FRA_SUPPRESS_PREFIXLEN, r.suppressPrefixlen));
  if (r.ipProto !== undefined) attrs.push(u8Attr(C.FRA_IP_PROTO, checkedByte(r.ipProto, 'ipproto')));
  if (r.sport !== undefined) attrs.push(attr(C.FRA_SPORT_RANGE, portRange(r.sport, 'sport')));
  if (r.dport !== undefined) attrs.push(attr(C.FRA_DPORT_RANGE, portRange(r.dport, 'dport')));
  if (r.l3mdev) attrs.push(u8Attr(C.FRA_L3MDEV, 1));
  if (r.dscp !== undefined) attrs.push(u8Attr(C.FRA_DSCP, checkedByte(r.dscp, 'dscp', 63)));
  if (r.unmodelled?.length) throw new UplinkdError('netlink', `cannot encode rule selectors ${r.unmodelled.join(' ')}`);
  const hdr = fibRuleHdr(src?.prefixlen ?? 0, dst?.prefixlen ?? 0, r.action === 'lookup' ? r.table : 0, action,
    r.invert ? C.FIB_RULE_INVERT : 0, checkedByte(r.tos ?? 0, 'tos'));
  return Buffer.concat([hdr, ...attrs]);
}

function checkedByte(n: number, what: string, max = 255): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new UplinkdError('netlink', `cannot encode rule ${what} ${n} (expected 0..${max})`);
  return n;
}


/** struct fib_rule_port_range, host byte order (linux/fib_rules.h); the kernel wants 1 <= start <= end <= 65534. */
function portRange(p: PortRange, what: string): Buffer {
  if (!Number.isInteger(p.start) || !Number.isInteger(p.end) || p.start < 1 || p.end > MAX_RULE_PORT || p.start > p.end) {
    throw new UplinkdError('netlink', `cannot encode rule ${what} ${p.start}-${p.end} (expected 1 <= start <= end <= ${MAX_RULE_PORT})`);
  }
  const b = Buffer.alloc(C.FIB_RULE_PORT_RANGE_LEN);
  b.writeUInt16LE(p.start, 0);
  b.writeUInt16LE(p.end, 2);
  return b;
}

function readPortRange(v: Buffer, what: string): PortRange {
  if (v.length < C.FIB_RULE_PORT_RANGE_LEN) throw malformed(`${what}: want ${C.FIB_RULE_PORT_RANGE_LEN} bytes, got ${v.length}`);
  return { start: v.readUInt16LE(0), end: v.readUInt16LE(2) };
}

/** Payload for an RTM_GETRULE dump of IPv4 rules. */
export function encodeRuleDumpRequest(): Buffer {
  return fibRuleHdr(0, 0, 0, 0, 0);
}

/** Decode an RTM_NEWRULE/DELRULE payload; undefined for non-IPv4 families. */
export function decodeRule(payload: Buffer): Rule | undefined {
  requireLen(payload, C.FIB_RULE_HDR_LEN, 'fib_rule_hdr');
  if (payload.readUInt8(0) !== C.AF_INET) return undefined;
  const dstLen = payload.readUInt8(1);
  const srcLen = payload.readUInt8(2);
  const actionNumber = payload.readUInt8(7);
  const a = attrMap(payload, C.FIB_RULE_HDR_LEN);
  const table = a.get(C.FRA_TABLE);
  const prio = a.get(C.FRA_PRIORITY);
  const proto = a.get(C.FRA_PROTOCOL);
  const rule: Rule = {
    priority: prio ? readU32(prio, 'FRA_PRIORITY') : 0, // the kernel omits priority 0
    action: ACTIONS.find(([, n]) => n === actionNumber)?.[0] ?? 'other',
    table: table ? readU32(table, 'FRA_TABLE') : payload.readUInt8(4),
    protocol: proto ? readU8(proto, 'FRA_PROTOCOL') : 0,
  };
  const src = a.get(C.FRA_SRC);
  if (src || srcLen > 0) rule.src = ipv4Cidr(src, srcLen, 'FRA_SRC');
  const dst = a.get(C.FRA_DST);
  if (dst || dstLen > 0) rule.dst = ipv4Cidr(dst, dstLen, 'FRA_DST');
  const iif = a.get(C.FRA_IIFNAME);
  if (iif) rule.iif = readStr(iif);
  const oif = a.get(C.FRA_OIFNAME);
  if (oif) rule.oif = readStr(oif);
  const mark = a.get(C.FRA_FWMARK);
  if (mark) rule.fwmark = readU32(mark, 'FRA_FWMARK');
  const mask = a.get(C.FRA_FWMASK);
  if (mask) rule.fwmask = readU32(mask, 'FRA_FWMASK');
  const suppress = a.get(C.FRA_SUPPRESS_PREFIXLEN);
  if (suppress) {
    const n = readU32(suppress, 'FRA_SUPPRESS_PREFIXLEN');
    if (n !== SUPPRESS_UNSET) rule.suppressPrefixlen = n;
  }
  if (payload.readUInt32LE(8) & C.FIB_RULE_INVERT) rule.invert = true;
  const tos = payload.readUInt8(3);
  if (tos !== 0) rule.tos = tos;
  const ipProto = a.get(C.FRA_IP_PROTO);
  if (ipProto) rule.ipProto = readU8(ipProto, 'FRA_IP_PROTO');
  const sport = a.get(C.FRA_SPORT_RANGE);
  if (sport) rule.sport = readPortRange(sport, 'FRA_SPORT_RANGE');
  const dport = a.get(C.FRA_DPORT_RANGE);
  if (dport) rule.dport = readPortRange(dport, 'FRA_DPORT_RANGE');
  const dscp = a.get(C.FRA_DSCP);
  if (dscp) rule.dscp = readU8(dscp, 'FRA_DSCP');
  const l3mdev = a.get(C.FRA_L3MDEV);
  if (l3mdev && readU8(l3mdev, 'FRA_L3MDEV') !== 0) rule.l3mdev = true;
  const unmodelled: string[] = [];
  for (const [type, name] of UNMODELLED) {
    const v = a.get(type);
    if (v === undefined) continue;
    // "Unset" values select nothing.
    if (type === C.FRA_SUPPRESS_IFGROUP && v.length >= 4 && v.readUInt32LE(0) === IFGROUP_UNSET) continue;
    if (type === C.FRA_FLOW && v.length >= 4 && v.readUInt32LE(0) === 0) continue;
    // The kernel echoes the full DSCP mask with every dscp match: that is plain `dscp N`.
    if (type === C.FRA_DSCP_MASK && v.length >= 1 && v.readUInt8(0) === DSCP_FULL_MASK && rule.dscp !== undefined) continue;
    // Linux >= 6.16 echoes a full port mask (0xffff) with every single-port match: that is plain `dport N`.
    if (type === C.FRA_DPORT_MASK && isFullPortMask(v) && isSinglePort(rule.dport)) continue;
    if (type === C.FRA_SPORT_MASK && isFullPortMask(v) && isSinglePort(rule.sport)) continue;
    unmodelled.push(`${name}=${v.toString('hex')}`);
  }
  if (unmodelled.length > 0) rule.unmodelled = unmodelled.sort();
  return rule;
}
