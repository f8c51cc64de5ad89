// ICMP echo packets for the health probes: building requests, reading what a raw socket
// receives (IPv4 header included): echo replies, and errors that quote one of our requests.

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;

/** What a received datagram says about one of our probes. */
export type IcmpEvent =
  | { kind: 'reply'; id: number; seq: number; from: string }
  /** An error sent by `from` about our request to `target`. */
  | { kind: 'error'; id: number; seq: number; from: string; target: string; error: string };

const UNREACH_CODES: Record<number, string> = {
  0: 'network unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  4: 'fragmentation needed',
  9: 'network prohibited',
  10: 'host prohibited',
  13: 'administratively prohibited',
};

/**
 * The Internet checksum (RFC 1071; ICMP's, RFC 792): one's complement of the one's-complement sum of the 16-bit
 * big-endian words, an odd last byte padded with zero. Returns a u16; a packet whose checksum field holds it sums to 0.
 */
export function internetChecksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2 === 1) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An echo request with a 16-byte payload naming uplinkd (so a capture tells who sent it). */
export function echoRequest(id: number, seq: number): Buffer {
  const payload = Buffer.from('uplinkd health..', 'ascii');
  const buf = Buffer.alloc(8 + payload.length);
  buf[0] = ICMP_ECHO_REQUEST;
  buf.writeUInt16BE(id & 0xffff, 4);
  buf.writeUInt16BE(seq & 0xffff, 6);
  payload.copy(buf, 8);
  buf.writeUInt16BE(internetChecksum(buf), 2);
  return buf;
}

/** Reads an IPv4 datagram from a raw ICMP socket; undefined for anything that is not about an echo request. */
export function parseIcmp(datagram: Buffer): IcmpEvent | undefined {
  const outer = ipPayload(datagram);
  if (!outer || outer.icmp.length < 8 || outer.protocol !== 1) return undefined;
  const { icmp, source } = outer;
  const type = icmp[0];
  if (type === ICMP_ECHO_REPLY) {
    return { kind: 'reply', id: icmp.readUInt16BE(4), seq: icmp.readUInt16BE(6), from: source };
  }
  if (type !== ICMP_DEST_UNREACH && type !== ICMP_TIME_EXCEEDED) return undefined;
  // The error quotes the IPv4 header of our request and at least its first 8 bytes.
  const quoted = ipPayload(icmp.subarray(8));
  if (!quoted || quoted.protocol !== 1 || quoted.icmp.length < 8 || quoted.icmp[0] !== ICMP_ECHO_REQUEST) return undefined;
  const error = type === ICMP_TIME_EXCEEDED ? 'time exceeded' : UNREACH_CODES[icmp[1]] ?? `unreachable (code ${icmp[1]})`;
  return {
    kind: 'error',
    id: quoted.icmp.readUInt16BE(4),
    seq: quoted.icmp.readUInt16BE(6),
    from: source,
    target: quoted.destination,
    error,
  };
}

function ipPayload(buf: Buffer): { protocol: number; source: string; destination: string; icmp: Buffer } | undefined {
  if (buf.length < 20 || buf[0] >> 4 !== 4) return undefined;
  const headerLength = (buf[0] & 0x0f) * 4;
  if (headerLength < 20 || buf.length < headerLength) return undefined;
  return {
    protocol: buf[9],
    source: Array.from(buf.subarray(12, 16)).join('.'),
    destination: Array.from(buf.subarray(16, 20)).join('.'),
    icmp: buf.subarray(headerLength),
  };
}
