// nlmsghdr framing and netlink attribute (TLV) encoding. Host byte order (little endian on
// the machines we target) for the headers and integer attributes; addresses are network order.
import { constants as osConstants } from 'node:os';
import { UplinkdError } from '../errors';
import { isIpv4, parseIpv4 } from '../model/ipv4';
import {
  NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED,
} from './constants';

/**
 * One netlink message: struct nlmsghdr's nlmsg_type, nlmsg_flags, nlmsg_seq, nlmsg_pid (include/uapi/linux/netlink.h) and its payload.
 */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

/** NLMSG_ALIGN / NLA_ALIGN: `n` bytes rounded up to a multiple of 4 (include/uapi/linux/netlink.h). */
export const align4 = (n: number): number => (n + 3) & ~3;

/** The typed error for a message that does not parse: UplinkdError('netlink') saying `what` is wrong. */
export function malformed(what: string): UplinkdError {
  return new UplinkdError('netlink', `malformed netlink message: ${what}`);
}

/**
 * One netlink message: a 16-byte nlmsghdr (nlmsg_len = header + payload, host byte order) and the payload,
 * padded to 4 bytes (NLMSG_ALIGN). `seq` and `pid` are taken as u32.
 */
export function encodeMessage(type: number, flags: number, seq: number, pid: number, payload: Buffer): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(flags, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(pid >>> 0, 12);
  payload.copy(buf, NLMSG_HDRLEN);
  return buf;
}

/** Split one datagram into its messages. Throws on a length that does not fit. */
export function parseMessages(buf: Buffer): NlMessage[] {
  const { messages, error } = splitDatagram(buf);
  if (error) throw error;
  return messages;
}

/** What splitDatagram makes of a datagram: the whole messages, and why it stopped early if it did. */
export interface SplitDatagram {
  /** The messages before any broken one. */
  messages: NlMessage[];
  /** Set when a message's nlmsg_len is below the header or runs past the datagram (a truncated read). */
  error?: UplinkdError;
  /** The broken message's nlmsg_seq when its 16-byte header was whole: whose answer was cut. */
  brokenSeq?: number;
}

/**
 * Split one datagram into its nlmsghdr-framed messages (include/uapi/linux/netlink.h, NLMSG_ALIGN
 * of 4 bytes) without throwing: a message whose length does not fit ends the walk, and what came
 * before it is still returned. Trailing bytes shorter than a header are padding.
 */
export function splitDatagram(buf: Buffer): SplitDatagram {
  const messages: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      return { messages, error: malformed(`nlmsg_len ${len} at offset ${off} of ${buf.length}`), brokenSeq: buf.readUInt32LE(off + 8) };
    }
    messages.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return { messages };
}

/** A decoded NLMSG_ERROR (or NLMSG_DONE) status. */
export interface NlError {
  /** 0 for an ACK, else a positive errno. */
  errno: number;
  /** Errno name such as "EEXIST"; "" for an ACK. */
  code: string;
  /** The kernel's extended ACK text (NLMSGERR_ATTR_MSG), e.g. "Nexthop id does not exist". */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset, from the start of the request's nlmsghdr, of the attribute the kernel refused. */
  offset?: number;
}

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, n]) => [n, name] as [number, string]),
);

/** The errno name for a positive errno (`17` -> `EEXIST`, Node's os.constants.errno), else `errno N`. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/**
 * Decode an NLMSG_ERROR payload (struct nlmsgerr, include/uapi/linux/netlink.h): int error, the
 * request's nlmsghdr, the rest of the request unless NLM_F_CAPPED, then, with NLM_F_ACK_TLVS
 * (the socket set NETLINK_EXT_ACK), NLMSGERR_ATTR_* attributes. Throws UplinkdError('netlink') when
 * shorter than the error and header; a broken TLV area only loses the extended ACK.
 */
export function decodeError(msg: NlMessage): NlError {
  if (msg.type !== NLMSG_ERROR) throw malformed(`type ${msg.type} is not NLMSG_ERROR`);
  if (msg.payload.length < 4 + NLMSG_HDRLEN) throw malformed(`short NLMSG_ERROR (${msg.payload.length} bytes)`);
  const errno = -msg.payload.readInt32LE(0) || 0; // not -0 for an ACK
  const out: NlError = { errno, code: errno === 0 ? '' : errnoName(errno) };
  if (msg.flags & NLM_F_ACK_TLVS) {
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(msg.payload.readUInt32LE(4));
    readExtAck(msg.payload, 4 + echoed, out);
  }
  return out;
}

/** NLMSG_DONE's int error (negative when the dump failed part way) and its extended ACK, if any. */
export function decodeDone(msg: NlMessage): NlError {
  if (msg.type !== NLMSG_DONE || msg.payload.length < 4) return { errno: 0, code: '' };
  const v = msg.payload.readInt32LE(0);
  const errno = v < 0 ? -v : 0;
  const out: NlError = { errno, code: errno === 0 ? '' : errnoName(errno) };
  if (msg.flags & NLM_F_ACK_TLVS) readExtAck(msg.payload, 4, out);
  return out;
}

function readExtAck(payload: Buffer, start: number, out: NlError): void {
  if (start > payload.length) return;
  try {
    eachAttr(payload, start, (type, off, len) => {
      if (type === NLMSGERR_ATTR_MSG) out.message = readStr(payload.subarray(off, off + len));
      else if (type === NLMSGERR_ATTR_OFFS && len >= 4) out.offset = payload.readUInt32LE(off);
    });
  } catch {
    // The errno is still the answer; only the text is lost.
  }
}

/** NLMSG_DONE may carry a negative errno when the dump failed part way. */
export function doneErrno(msg: NlMessage): number {
  return decodeDone(msg).errno;
}

/**
 * An NLMSG_ERROR answering `request` with `errno` (0 = ACK), in the capped form (int error + the request's
 * nlmsghdr, NLM_F_CAPPED on the ACK), as the kernel sends it; for fake kernels and crafted-datagram tests.
 */
export function encodeAck(seq: number, pid: number, errno: number, request: NlMessage): Buffer {
  // The capped form: int error + the request's header only.
  const p = Buffer.alloc(4 + NLMSG_HDRLEN);
  p.writeInt32LE(-errno, 0);
  p.writeUInt32LE(NLMSG_HDRLEN + request.payload.length, 4);
  p.writeUInt16LE(request.type, 8);
  p.writeUInt16LE(request.flags, 10);
  p.writeUInt32LE(request.seq, 12);
  p.writeUInt32LE(request.pid, 16);
  return encodeMessage(NLMSG_ERROR, errno === 0 ? NLM_F_CAPPED : 0, seq, pid, p);
}

// ---- attributes ----

/**
 * One netlink attribute (struct nlattr): nla_type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits, and its value.
 */
export interface Attr {
  type: number;
  value: Buffer;
}

/** struct nlattr flag of a nested attribute (include/uapi/linux/netlink.h). */
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff; // strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

/** Attributes in order; the same type may repeat. */
export function parseAttrs(buf: Buffer, start = 0): Attr[] {
  const out: Attr[] = [];
  let off = start;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) throw malformed(`attribute length ${len} at offset ${off} of ${buf.length}`);
    out.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, value: buf.subarray(off + 4, off + len) });
    off += align4(len);
  }
  return out;
}

/**
 * Walk the attributes of buf[start..] without allocating: fn(type, valueOffset, valueLength).
 * The decoders of large dumps (thousands of routes) use this instead of parseAttrs/attrMap.
 */
export function eachAttr(
  buf: Buffer, start: number, fn: (type: number, off: number, len: number) => void, end = buf.length,
): void {
  let off = start;
  while (off + 4 <= end) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > end) throw malformed(`attribute length ${len} at offset ${off} of ${end}`);
    fn(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, off + 4, len - 4);
    off += align4(len);
  }
}

/**
 * The u32 (host byte order) at buf[off], whose attribute value is `len` bytes; UplinkdError('netlink') naming `what` if shorter than 4.
 */
export function u32At(buf: Buffer, off: number, len: number, what: string): number {
  if (len < 4) throw malformed(`${what}: want 4 bytes, got ${len}`);
  return buf.readUInt32LE(off);
}

/**
 * The IPv4 address (network byte order, 4 bytes) at buf[off] as dotted quad; UplinkdError('netlink') naming `what` unless `len` is 4.
 */
export function ipv4At(buf: Buffer, off: number, len: number, what: string): string {
  if (len !== 4) throw malformed(`${what}: want a 4-byte IPv4 address, got ${len} bytes`);
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** Attributes by type; a repeated type keeps the last one. */
export function attrMap(buf: Buffer, start = 0): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of parseAttrs(buf, start)) m.set(a.type, a.value);
  return m;
}

/** One attribute: struct nlattr (nla_len = 4 + value length, nla_type) and the value, padded to 4 bytes (NLA_ALIGN). */
export function attr(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt16LE(len, 0);
  buf.writeUInt16LE(type, 2);
  value.copy(buf, 4);
  return buf;
}

/** Nested attribute, flagged NLA_F_NESTED: strict kernel validation (e.g. nexthops) demands it. */
export const nested = (type: number, children: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));
/** A flag attribute: present means true, no value (NLA_FLAG). */
export const flagAttr = (type: number): Buffer => attr(type, Buffer.alloc(0));

/** A u8 attribute (NLA_U8), padded to 4 bytes with zeros. */
export function u8Attr(type: number, v: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt16LE(5, 0);
  buf.writeUInt16LE(type, 2);
  buf[4] = v & 0xff;
  return buf;
}
/** A u16 attribute in host byte order (NLA_U16), padded to 4 bytes with zeros. */
export function u16Attr(type: number, v: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt16LE(6, 0);
  buf.writeUInt16LE(type, 2);
  buf.writeUInt16LE(v, 4);
  return buf;
}
/** A u32 attribute in host byte order (NLA_U32); `v` is taken modulo 2^32. Written in place: a full apply encodes thousands. */
export function u32Attr(type: number, v: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeUInt16LE(8, 0);
  buf.writeUInt16LE(type, 2);
  buf.writeUInt32LE(v >>> 0, 4);
  return buf;
}
/** NUL-terminated string, as the kernel expects for names. */
export function strAttr(type: number, s: string): Buffer {
  return attr(type, Buffer.from(s + '\0', 'utf8'));
}
/**
 * An IPv4 address attribute, 4 bytes in network byte order (RTA_DST, RTA_GATEWAY, FRA_SRC, ...). Throws as ipv4ToBuffer().
 */
export function ipv4Attr(type: number, ip: string): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeUInt16LE(8, 0);
  buf.writeUInt16LE(type, 2);
  buf.writeUInt32BE(ipv4Number(ip), 4);
  return buf;
}

/** An attribute value's u8; UplinkdError('netlink') naming `what` when empty. */
export function readU8(v: Buffer, what: string): number {
  if (v.length < 1) throw malformed(`${what}: want 1 byte, got ${v.length}`);
  return v.readUInt8(0);
}
/** An attribute value's u16 (host byte order); UplinkdError('netlink') naming `what` when shorter than 2 bytes. */
export function readU16(v: Buffer, what: string): number {
  if (v.length < 2) throw malformed(`${what}: want 2 bytes, got ${v.length}`);
  return v.readUInt16LE(0);
}
/** An attribute value's u32 (host byte order); UplinkdError('netlink') naming `what` when shorter than 4 bytes. */
export function readU32(v: Buffer, what: string): number {
  if (v.length < 4) throw malformed(`${what}: want 4 bytes, got ${v.length}`);
  return v.readUInt32LE(0);
}
/** An NLA_NUL_STRING / NLA_STRING value as text, up to its first NUL. */
export function readStr(v: Buffer): string {
  const nul = v.indexOf(0);
  return v.toString('utf8', 0, nul < 0 ? v.length : nul);
}
/**
 * A 4-byte IPv4 attribute value (network byte order) as dotted quad; UplinkdError('netlink') naming `what` otherwise.
 */
export function readIpv4(v: Buffer, what: string): string {
  if (v.length !== 4) throw malformed(`${what}: want a 4-byte IPv4 address, got ${v.length} bytes`);
  return `${v[0]}.${v[1]}.${v[2]}.${v[3]}`;
}

// ---- IPv4 text ----

/** A dotted quad (model/ipv4's rule: no leading zeros) as 4 bytes in network order. */
export function ipv4ToBuffer(ip: string): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt32BE(ipv4Number(ip), 0);
  return buf;
}

/** A dotted quad as an unsigned number; UplinkdError('netlink') when it is not one (model/ipv4's rule). */
function ipv4Number(ip: string): number {
  if (!isIpv4(ip)) throw new UplinkdError('netlink', `not an IPv4 address: ${JSON.stringify(ip)}`);
  return parseIpv4(ip);
}

/** A prefix as text from its address attribute and length (rtm_dst_len, frh_src_len); no attribute means 0.0.0.0. */
export function ipv4Cidr(v: Buffer | undefined, len: number, what: string): string {
  return `${v ? readIpv4(v, what) : '0.0.0.0'}/${len}`;
}

/**
 * Checks that a payload holds its fixed header (struct rtmsg, fib_rule_hdr, nhmsg, ...): UplinkdError('netlink') naming `what` when shorter than `len` bytes.
 */
export function requireLen(payload: Buffer, len: number, what: string): void {
  if (payload.length < len) throw malformed(`${what} header: want ${len} bytes, got ${payload.length}`);
}
