import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_MULTI } from './constants';
import {
  attr, attrMap, decodeError, doneErrno, encodeAck, encodeMessage, ipv4ToBuffer, nested, parseAttrs,
  parseMessages, readStr, splitDatagram, strAttr, u16Attr, u32Attr, u8Attr, NLA_F_NESTED,
} from './wire';

test('messages: several in one datagram, padded to 4 bytes, round-trip', () => {
  const a = encodeMessage(24, NLM_F_MULTI, 7, 99, Buffer.from([1, 2, 3, 4, 5])); // 21 bytes -> padded to 24
  const b = encodeMessage(NLMSG_DONE, NLM_F_MULTI, 7, 99, Buffer.alloc(4));
  assert.equal(a.length, 24);
  assert.equal(a.readUInt32LE(0), 21, 'nlmsg_len excludes padding');
  const msgs = parseMessages(Buffer.concat([a, b]));
  assert.equal(msgs.length, 2);
  assert.deepEqual({ ...msgs[0], payload: [...msgs[0].payload] }, { type: 24, flags: NLM_F_MULTI, seq: 7, pid: 99, payload: [1, 2, 3, 4, 5] });
  assert.equal(msgs[1].type, NLMSG_DONE);
  assert.equal(doneErrno(msgs[1]), 0);
});

test('messages: a length running past the buffer is malformed', () => {
  const m = encodeMessage(24, 0, 1, 0, Buffer.alloc(8));
  m.writeUInt32LE(64, 0);
  assert.throws(() => parseMessages(m), (e: unknown) => e instanceof UplinkdError && e.code === 'netlink');
  const tiny = encodeMessage(24, 0, 1, 0, Buffer.alloc(0));
  tiny.writeUInt32LE(8, 0);
  assert.throws(() => parseMessages(tiny), UplinkdError);
});

test('NLMSG_ERROR: ack and errno, by name', () => {
  const req = parseMessages(encodeMessage(24, 5, 42, 0, Buffer.alloc(12)))[0];
  const ack = parseMessages(encodeAck(42, 0, 0, req))[0];
  assert.equal(ack.type, NLMSG_ERROR);
  assert.deepEqual(decodeError(ack), { errno: 0, code: '' });
  const eexist = parseMessages(encodeAck(42, 0, 17, req))[0];
  assert.deepEqual(decodeError(eexist), { errno: 17, code: 'EEXIST' });
  assert.equal(decodeError(parseMessages(encodeAck(42, 0, 3, req))[0]).code, 'ESRCH');
});

test('NLMSG_DONE carrying a negative errno', () => {
  const p = Buffer.alloc(4);
  p.writeInt32LE(-16, 0);
  assert.equal(doneErrno(parseMessages(encodeMessage(NLMSG_DONE, 0, 1, 0, p))[0]), 16);
});

test('attributes: alignment, repeated types, nested flag stripped on read', () => {
  const buf = Buffer.concat([u8Attr(1, 7), u16Attr(2, 0x1234), u32Attr(3, 0xfffffffe), strAttr(4, 'eth0'), u8Attr(1, 9)]);
  assert.equal(u8Attr(1, 7).length, 8, 'u8 attribute padded to 8 bytes');
  assert.equal(u8Attr(1, 7).readUInt16LE(0), 5, 'nla_len excludes padding');
  const list = parseAttrs(buf);
  assert.deepEqual(list.map((a) => a.type), [1, 2, 3, 4, 1]);
  const m = attrMap(buf);
  assert.equal(m.get(1)![0], 9, 'last one wins');
  assert.equal(m.get(2)!.readUInt16LE(0), 0x1234);
  assert.equal(m.get(3)!.readUInt32LE(0), 0xfffffffe);
  assert.equal(readStr(m.get(4)!), 'eth0');

  const n = nested(12, [u16Attr(1, 64), u32Attr(2, 12000)]);
  assert.equal(n.readUInt16LE(2), 12 | NLA_F_NESTED);
  const outer = parseAttrs(n);
  assert.equal(outer[0].type, 12);
  const inner = attrMap(outer[0].value);
  assert.equal(inner.get(1)!.readUInt16LE(0), 64);
  assert.equal(inner.get(2)!.readUInt32LE(0), 12000);
});

test('attributes: truncated attribute is malformed', () => {
  const a = attr(5, Buffer.alloc(8));
  a.writeUInt16LE(40, 0);
  assert.throws(() => parseAttrs(a), UplinkdError);
});

test('IPv4 text', () => {
  assert.deepEqual([...ipv4ToBuffer('198.51.100.7')], [198, 51, 100, 7]);
  assert.throws(() => ipv4ToBuffer('1.2.3'), UplinkdError);
  assert.throws(() => ipv4ToBuffer('1.2.3.256'), UplinkdError);
  // model/ipv4's rule: a leading zero is refused (inet_aton would read it as octal), not sent as decimal.
  assert.throws(() => ipv4ToBuffer('010.1.2.3'), UplinkdError);
  assert.throws(() => ipv4ToBuffer('1.2.3.4 '), UplinkdError);
});

test('splitDatagram: the whole messages before a cut one, the error, and the cut message\'s seq', () => {
  const a = encodeMessage(24, 0, 7, 0, Buffer.alloc(8));
  const b = encodeMessage(2, 0, 9, 0, Buffer.alloc(20));
  const r = splitDatagram(Buffer.concat([a, b.subarray(0, 24)]));
  assert.deepEqual(r.messages.map((m) => m.seq), [7]);
  assert.ok(r.error instanceof UplinkdError);
  assert.equal(r.brokenSeq, 9);
  const tail = splitDatagram(Buffer.concat([a, Buffer.alloc(6)]));
  assert.equal(tail.error, undefined, 'less than a header left is padding');
});

test('decodeError: extended ACK text and offset after the echoed request; a broken TLV area keeps the errno', () => {
  const req = encodeMessage(24, 0x405, 3, 0, Buffer.alloc(20));
  const err = Buffer.alloc(4);
  err.writeInt32LE(-22, 0);
  const tlv = Buffer.concat([strAttr(1, 'Invalid prefix for given prefix length'), u32Attr(2, 28)]);
  const full = { type: NLMSG_ERROR, flags: 0x200, seq: 3, pid: 0, payload: Buffer.concat([err, req, tlv]) };
  assert.deepEqual(decodeError(full), { errno: 22, code: 'EINVAL', message: 'Invalid prefix for given prefix length', offset: 28 });
  const broken = { ...full, payload: Buffer.concat([err, req, Buffer.from([0xff, 0xff, 1, 0, 1])]) };
  assert.deepEqual(decodeError(broken), { errno: 22, code: 'EINVAL' });
});
