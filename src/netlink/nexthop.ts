// RTM_{NEW,DEL,GET}NEXTHOP: struct nhmsg + NHA_* attributes, NHA_GROUP (struct nexthop_grp[]),
// resilient groups (NHA_GROUP_TYPE=RES + nested NHA_RES_GROUP, timers in clock_t).
import type { Nexthop, NexthopGroupMember, ResilientParams } from '../model/types';
import { UplinkdError } from '../errors';
import * as C from './constants';
import type { IfNames } from './names';
import {
  attr, attrMap, flagAttr, ipv4Attr, malformed, nested, readIpv4, readU16, readU32, requireLen, u16Attr, u32Attr,
} from './wire';

function nhmsg(family: number, protocol: number, flags = 0): Buffer {
  const h = Buffer.alloc(C.NHMSG_LEN);
  h.writeUInt8(family, 0);
  h.writeUInt8(protocol, 2);
  h.writeUInt32LE(flags, 4); // nh_flags
  return h;
}

function encodeGroup(members: NexthopGroupMember[]): Buffer {
  const b = Buffer.alloc(C.NEXTHOP_GRP_LEN * members.length);
  members.forEach((m, i) => {
    if (!Number.isInteger(m.weight) || m.weight < 1 || m.weight > 256) {
      throw new UplinkdError('netlink', `nexthop group weight ${m.weight} is outside 1..256`);
    }
    b.writeUInt32LE(m.id, i * C.NEXTHOP_GRP_LEN);
    b.writeUInt8(m.weight - 1, i * C.NEXTHOP_GRP_LEN + 4); // the kernel stores weight-1
  });
  return b;
}

const toClockT = (seconds: number): number => Math.round(seconds * C.USER_HZ);

/** Payload for RTM_NEWNEXTHOP (add or replace). */
export function encodeNexthop(nh: Nexthop, names: IfNames): Buffer {
  const attrs: Buffer[] = [u32Attr(C.NHA_ID, nh.id)];
  if (nh.group) {
    attrs.push(attr(C.NHA_GROUP, encodeGroup(nh.group)));
    if (nh.resilient) {
      attrs.push(u16Attr(C.NHA_GROUP_TYPE, C.NEXTHOP_GRP_TYPE_RES));
      attrs.push(nested(C.NHA_RES_GROUP, [
        u16Attr(C.NHA_RES_GROUP_BUCKETS, nh.resilient.buckets),
        u32Attr(C.NHA_RES_GROUP_IDLE_TIMER, toClockT(nh.resilient.idleTimer)),
        u32Attr(C.NHA_RES_GROUP_UNBALANCED_TIMER, toClockT(nh.resilient.unbalancedTimer)),
      ]));
    }
    // Groups must be AF_UNSPEC; the kernel rejects a family on them.
    return Buffer.concat([nhmsg(C.AF_UNSPEC, nh.protocol), ...attrs]);
  }
  if (nh.blackhole) {
    attrs.push(flagAttr(C.NHA_BLACKHOLE));
  } else {
    if (nh.dev === undefined) throw new UplinkdError('netlink', `nexthop ${nh.id} needs a dev, a group or blackhole`);
    attrs.push(u32Attr(C.NHA_OIF, names.indexOf(nh.dev)));
    if (nh.gateway !== undefined) attrs.push(ipv4Attr(C.NHA_GATEWAY, nh.gateway));
  }
  const flags = nh.onlink && !nh.blackhole ? C.RTNH_F_ONLINK : 0;
  return Buffer.concat([nhmsg(C.AF_INET, nh.protocol, flags), ...attrs]);
}

/** Payload for RTM_DELNEXTHOP or a single RTM_GETNEXTHOP: only the id (the kernel rejects anything else). */
export function encodeNexthopDelete(id: number): Buffer {
  return Buffer.concat([nhmsg(C.AF_UNSPEC, 0), u32Attr(C.NHA_ID, id)]);
}

/** Payload for an RTM_GETNEXTHOP dump of all nexthops. */
export function encodeNexthopDumpRequest(): Buffer {
  return nhmsg(C.AF_UNSPEC, 0);
}

function decodeGroup(v: Buffer): NexthopGroupMember[] {
  if (v.length % C.NEXTHOP_GRP_LEN !== 0) throw malformed(`NHA_GROUP of ${v.length} bytes`);
  const out: NexthopGroupMember[] = [];
  for (let off = 0; off < v.length; off += C.NEXTHOP_GRP_LEN) {
    // weight_high (formerly resvd1) extends the weight on kernels with 16-bit weights.
    out.push({ id: v.readUInt32LE(off), weight: ((v.readUInt8(off + 5) << 8) | v.readUInt8(off + 4)) + 1 });
  }
  return out;
}

function decodeResilient(v: Buffer): ResilientParams {
  const a = attrMap(v);
  const get = (t: number, what: string, read: (b: Buffer, w: string) => number): number => {
    const b = a.get(t);
    return b ? read(b, what) : 0;
  };
  return {
    buckets: get(C.NHA_RES_GROUP_BUCKETS, 'NHA_RES_GROUP_BUCKETS', readU16),
    idleTimer: get(C.NHA_RES_GROUP_IDLE_TIMER, 'NHA_RES_GROUP_IDLE_TIMER', readU32) / C.USER_HZ,
    unbalancedTimer: get(C.NHA_RES_GROUP_UNBALANCED_TIMER, 'NHA_RES_GROUP_UNBALANCED_TIMER', readU32) / C.USER_HZ,
  };
}

/** Decode an RTM_NEWNEXTHOP/DELNEXTHOP payload; undefined for IPv6 nexthops. */
export function decodeNexthop(payload: Buffer, names: IfNames): Nexthop | undefined {
  requireLen(payload, C.NHMSG_LEN, 'nhmsg');
  if (payload.readUInt8(0) === C.AF_INET6) return undefined;
  const a = attrMap(payload, C.NHMSG_LEN);
  const id = a.get(C.NHA_ID);
  if (!id) throw malformed('nexthop without NHA_ID');
  const nh: Nexthop = { id: readU32(id, 'NHA_ID'), protocol: payload.readUInt8(2) };
  const group = a.get(C.NHA_GROUP);
  if (group) {
    nh.group = decodeGroup(group);
    const type = a.get(C.NHA_GROUP_TYPE);
    const res = a.get(C.NHA_RES_GROUP);
    if (type && readU16(type, 'NHA_GROUP_TYPE') === C.NEXTHOP_GRP_TYPE_RES) {
      nh.resilient = decodeResilient(res ?? Buffer.alloc(0));
    }
    return nh;
  }
  if (a.has(C.NHA_BLACKHOLE)) {
    nh.blackhole = true;
    return nh;
  }
  const oif = a.get(C.NHA_OIF);
  if (oif) nh.dev = names.nameOf(readU32(oif, 'NHA_OIF'));
  const gw = a.get(C.NHA_GATEWAY);
  if (gw) nh.gateway = readIpv4(gw, 'NHA_GATEWAY');
  if (payload.readUInt32LE(4) & C.RTNH_F_ONLINK) nh.onlink = true;
  return nh;
}
