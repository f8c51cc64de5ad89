// Small IPv4 / CIDR helpers. Addresses are dotted quads in the model; numbers
// (unsigned 32-bit) are only used for arithmetic here.
import { UplinkdError } from '../errors';
import type { Cidr, Ipv4 } from './types';

// Strict dotted quad: no leading zeros (inet_aton would read "010" as octal).
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const CIDR_RE = /^([^/]+)\/(3[0-2]|[12]?[0-9])$/;

/** True for a strict dotted quad (four decimal octets 0..255, no leading zeros). */
export function isIpv4(text: string): boolean {
  return IPV4_RE.test(text);
}

/** "a.b.c.d/len" with a valid address and 0 <= len <= 32 (the address need not be the network's). */
export function isCidr(text: string): boolean {
  const m = CIDR_RE.exec(text);
  return m !== null && isIpv4(m[1]);
}

/** Dotted quad -> unsigned 32-bit number; throws UplinkdError('usage') when not an IPv4 address. */
export function parseIpv4(text: string): number {
  const m = IPV4_RE.exec(text);
  if (!m) throw new UplinkdError('usage', `not an IPv4 address: '${text}'`);
  return ((+m[1] << 24) | (+m[2] << 16) | (+m[3] << 8) | +m[4]) >>> 0;
}

/** Unsigned 32-bit number -> dotted quad (inverse of parseIpv4()). */
export function formatIpv4(n: number): Ipv4 {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** "198.51.100.2/24" -> { ip: "198.51.100.2", prefixlen: 24 }; throws UplinkdError('usage') when malformed. */
export function parseCidr(text: string): { ip: Ipv4; prefixlen: number } {
  const m = CIDR_RE.exec(text);
  if (!m || !isIpv4(m[1])) throw new UplinkdError('usage', `not an IPv4 prefix (a.b.c.d/len): '${text}'`);
  return { ip: m[1], prefixlen: +m[2] };
}

/** Netmask of a prefix length as an unsigned number (len 0 -> 0). */
export function maskOf(prefixlen: number): number {
  return prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
}

/** Network of an address: networkOf("198.51.100.2", 24) -> "198.51.100.0/24". */
export function networkOf(ip: Ipv4, prefixlen: number): Cidr {
  return `${formatIpv4((parseIpv4(ip) & maskOf(prefixlen)) >>> 0)}/${prefixlen}`;
}

/** Highest address of the prefix: broadcastOf("198.51.100.2", 24) -> "198.51.100.255". */
export function broadcastOf(ip: Ipv4, prefixlen: number): Ipv4 {
  return formatIpv4((parseIpv4(ip) | ~maskOf(prefixlen)) >>> 0);
}

/** Whether `ip` lies inside `cidr` (the CIDR's host bits are ignored). */
export function contains(cidr: Cidr, ip: Ipv4): boolean {
  const { ip: base, prefixlen } = parseCidr(cidr);
  const mask = maskOf(prefixlen);
  return ((parseIpv4(base) & mask) >>> 0) === ((parseIpv4(ip) & mask) >>> 0);
}

/** Whether two prefixes share any address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  const mask = maskOf(Math.min(pa.prefixlen, pb.prefixlen));
  return ((parseIpv4(pa.ip) & mask) >>> 0) === ((parseIpv4(pb.ip) & mask) >>> 0);
}

/** Dotted quad from 4 bytes (network order) at `offset`, e.g. an address option of a binary lease. */
export function ipv4FromBytes(bytes: Uint8Array, offset: number): Ipv4 {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** First valid address of a comma- or space-separated list (a lease's router or DNS list), if any. */
export function firstIpv4(list: string): Ipv4 | undefined {
  return list
    .split(/[\s,]+/)
    .filter((s) => s !== '')
    .find(isIpv4);
}
