// RTM_{NEW,DEL,GET}RULE: struct fib_rule_hdr + FRA_* attributes.
import type { Rule, RuleAction } from '../model/types';
import { UplinkdError } from '../errors';
import * as C from './constants';
import {
  attrMap, ipv4Attr, ipv4Cidr, parseCidr, readStr, readU32, readU8, requireLen, strAttr, u32Attr, u8Attr,
} from './wire';

const ACTIONS: [RuleAction, number][] = [
  ['lookup', C.FR_ACT_TO_TBL], ['blackhole', C.FR_ACT_BLACKHOLE],
  ['unreachable', C.FR_ACT_UNREACHABLE], ['prohibit', C.FR_ACT_PROHIBIT],
];
/** FRA_SUPPRESS_PREFIXLEN's "unset" value (-1 as u32). */
const SUPPRESS_UNSET = 0xffffffff;

function fibRuleHdr(srcLen: number, dstLen: number, table: number, action: number, flags: number): Buffer {
  const h = Buffer.alloc(C.FIB_RULE_HDR_LEN);
  h.writeUInt8(C.AF_INET, 0);
  h.writeUInt8(dstLen, 1);
  h.writeUInt8(srcLen, 2);
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
  if (src && src.len > 0) attrs.push(ipv4Attr(C.FRA_SRC, src.ip));
  if (dst && dst.len > 0) attrs.push(ipv4Attr(C.FRA_DST, dst.ip));
  if (r.iif !== undefined) attrs.push(strAttr(C.FRA_IIFNAME, r.iif));
  if (r.oif !== undefined) attrs.push(strAttr(C.FRA_OIFNAME, r.oif));
  if (r.fwmark !== undefined) attrs.push(u32Attr(C.FRA_FWMARK, r.fwmark));
  if (r.fwmask !== undefined) attrs.push(u32Attr(C.FRA_FWMASK, r.fwmask));
  if (r.suppressPrefixlen !== undefined) attrs.push(u32Attr(C.FRA_SUPPRESS_PREFIXLEN, r.suppressPrefixlen));
  const hdr = fibRuleHdr(src?.len ?? 0, dst?.len ?? 0, r.action === 'lookup' ? r.table : 0, action,
    r.invert ? C.FIB_RULE_INVERT : 0);
  return Buffer.concat([hdr, ...attrs]);
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
  return rule;
}
