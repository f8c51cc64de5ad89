// The DNS probe's wire format: one hand-encoded question, and the id of the answer.
// Any answer (NOERROR, NXDOMAIN, REFUSED...) proves the path to the server works.
import { UplinkdError } from '../errors';

/**
 * The name asked for. `.invalid` is reserved (RFC 6761): resolvers answer NXDOMAIN at once,
 * without asking anyone upstream, so the probe measures only the path to the resolver.
 */
export const PROBE_NAME = 'uplinkd-probe.invalid';

/** A recursive query for `name`, type A, class IN. */
export function dnsQuery(id: number, name = PROBE_NAME): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new UplinkdError('usage', `DNS label too long: '${label}'`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  return Buffer.concat([header, ...parts, Buffer.from([0, 0, 1, 0, 1])]);
}

/** The id of a DNS response, or undefined when the datagram is not a response. */
export function dnsResponseId(datagram: Buffer): number | undefined {
  if (datagram.length < 12 || (datagram[2] & 0x80) === 0) return undefined;
  return datagram.readUInt16BE(0);
}

/** The test responders' answer to any query: the same id and question, flagged as a response, NXDOMAIN. */
export function nxdomainReply(query: Buffer): Buffer | undefined {
  if (query.length < 12) return undefined;
  const reply = Buffer.from(query);
  reply[2] = 0x81; // QR, RD
  reply[3] = 0x83; // RA, NXDOMAIN
  return reply;
}
