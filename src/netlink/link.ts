// RTM_NEWLINK/DELLINK (struct ifinfomsg) and RTM_NEWADDR/DELADDR (struct ifaddrmsg) decoding,
// and the dump requests for both.
import type { Address, Link } from '../model/types';
import * as C from './constants';
import type { IfNames } from './names';
import { scopeName } from './route';
import { attrMap, malformed, parseAttrs, readIpv4, readStr, readU32, requireLen, u32Attr } from './wire';

/** All links (AF_UNSPEC), without the per-link statistics that would make up most of the dump. */
export function encodeLinkDumpRequest(): Buffer {
  return Buffer.concat([Buffer.alloc(C.IFINFOMSG_LEN), u32Attr(C.IFLA_EXT_MASK, C.RTEXT_FILTER_SKIP_STATS)]);
}

/**
 * RTM_GETADDR dump request payload: a struct ifaddrmsg (include/uapi/linux/if_addr.h) with ifa_family AF_INET, so only IPv4 addresses.
 */
export function encodeAddressDumpRequest(): Buffer {
  const h = Buffer.alloc(C.IFADDRMSG_LEN);
  h.writeUInt8(C.AF_INET, 0);
  return h;
}

/**
 * Decodes an RTM_NEWLINK/RTM_DELLINK payload (struct ifinfomsg + IFLA_* attributes, include/uapi/linux/if_link.h)
 * into a Link: ifindex, IFLA_IFNAME, IFF_UP, IFF_LOWER_UP, IFF_POINTOPOINT and the IFLA_LINKINFO kind.
 * Throws UplinkdError('netlink') for a short header or a link without a name.
 */
export function decodeLink(payload: Buffer): Link {
  requireLen(payload, C.IFINFOMSG_LEN, 'ifinfomsg');
  const flags = payload.readUInt32LE(8);
  const a = attrMap(payload, C.IFINFOMSG_LEN);
  const name = a.get(C.IFLA_IFNAME);
  if (!name) throw malformed('link without IFLA_IFNAME');
  const link: Link = {
    index: payload.readInt32LE(4),
    name: readStr(name),
    up: (flags & C.IFF_UP) !== 0,
    lowerUp: (flags & C.IFF_LOWER_UP) !== 0,
  };
  if (flags & C.IFF_POINTOPOINT) link.pointToPoint = true;
  const info = a.get(C.IFLA_LINKINFO);
  const kind = info && parseAttrs(info).find((x) => x.type === C.IFLA_INFO_KIND);
  if (kind) link.kind = readStr(kind.value);
  return link;
}

/** Decode an RTM_NEWADDR/DELADDR payload; undefined for non-IPv4 families. */
export function decodeAddress(payload: Buffer, names: IfNames): Address | undefined {
  requireLen(payload, C.IFADDRMSG_LEN, 'ifaddrmsg');
  if (payload.readUInt8(0) !== C.AF_INET) return undefined;
  const a = attrMap(payload, C.IFADDRMSG_LEN);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const local = a.get(C.IFA_LOCAL) ?? a.get(C.IFA_ADDRESS);
  if (!local) throw malformed('address without IFA_LOCAL/IFA_ADDRESS');
  const flagsAttr = a.get(C.IFA_FLAGS); // u32, supersedes the u8 ifa_flags
  const flags = flagsAttr ? readU32(flagsAttr, 'IFA_FLAGS') : payload.readUInt8(2);
  const remote = a.get(C.IFA_LOCAL) && a.get(C.IFA_ADDRESS);
  const peer = remote ? readIpv4(remote, 'IFA_ADDRESS') : undefined;
  const address: Address = {
    dev: names.nameOf(payload.readUInt32LE(4)),
    address: readIpv4(local, 'IFA_LOCAL'),
    prefixlen: payload.readUInt8(1),
    dynamic: (flags & C.IFA_F_PERMANENT) === 0,
    secondary: (flags & C.IFA_F_SECONDARY) !== 0,
    scope: scopeName(payload.readUInt8(3)),
  };
  if (peer !== undefined && peer !== address.address) address.peer = peer;
  return address;
}
