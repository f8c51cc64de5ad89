import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Rule } from '../model/types';
import { UplinkdError } from '../errors';
import * as C from './constants';
import { decodeRule, encodeRule } from './rule';
import { attr, attrMap, u32Attr } from './wire';

const base = { action: 'lookup', protocol: 117 } as const;

test('rule: from X lookup 1001 protocol 117 priority 10100', () => {
  const r: Rule = { ...base, priority: 10100, table: 1001, src: '198.51.100.7/32' };
  const p = encodeRule(r);
  assert.equal(p.readUInt8(0), C.AF_INET);
  assert.equal(p.readUInt8(2), 32, 'src_len');
  assert.equal(p.readUInt8(4), 0, 'table > 255 only in FRA_TABLE');
  assert.equal(p.readUInt8(7), C.FR_ACT_TO_TBL);
  const a = attrMap(p, C.FIB_RULE_HDR_LEN);
  assert.equal(a.get(C.FRA_PRIORITY)!.readUInt32LE(0), 10100);
  assert.equal(a.get(C.FRA_TABLE)!.readUInt32LE(0), 1001);
  assert.equal(a.get(C.FRA_PROTOCOL)![0], 117);
  assert.deepEqual([...a.get(C.FRA_SRC)!], [198, 51, 100, 7]);
  assert.deepEqual(decodeRule(p), r);
});

test('rule: lookup main suppress_prefixlength 0 round-trips (0 is not "unset")', () => {
  const r: Rule = { ...base, priority: 10200, table: C.RT_TABLE_MAIN, suppressPrefixlen: 0 };
  const p = encodeRule(r);
  assert.equal(p.readUInt8(4), 254);
  assert.deepEqual(decodeRule(p), r);
  // The kernel's "unset" (-1) must not read as a value.
  const unset = Buffer.concat([encodeRule({ ...base, priority: 1, table: 254 }), u32Attr(C.FRA_SUPPRESS_PREFIXLEN, 0xffffffff)]);
  assert.equal(decodeRule(unset)!.suppressPrefixlen, undefined);
});

test('rule: oif, iif, dst, fwmark/mask, invert, other actions', () => {
  const r: Rule = { ...base, priority: 10110, table: 1002, oif: 'wan1', iif: 'lan0', dst: '10.0.0.0/8', fwmark: 0x10, fwmask: 0xff, invert: true };
  const p = encodeRule(r);
  assert.equal(p.readUInt32LE(8) & C.FIB_RULE_INVERT, C.FIB_RULE_INVERT);
  assert.equal(p.readUInt8(1), 8);
  assert.deepEqual(decodeRule(p), r);
  const bh: Rule = { priority: 5, action: 'blackhole', table: 0, protocol: 4 };
  const bp = encodeRule(bh);
  assert.equal(bp.readUInt8(7), C.FR_ACT_BLACKHOLE);
  assert.equal(attrMap(bp, C.FIB_RULE_HDR_LEN).has(C.FRA_TABLE), false);
  assert.deepEqual(decodeRule(bp), bh);
  assert.throws(() => encodeRule({ ...bh, action: 'other' }), UplinkdError);
});

test('rule: kernel omissions (priority 0, no protocol), unknown action, IPv6 and short header', () => {
  const hdr = Buffer.alloc(C.FIB_RULE_HDR_LEN);
  hdr.writeUInt8(C.AF_INET, 0);
  hdr.writeUInt8(255, 4);
  hdr.writeUInt8(C.FR_ACT_TO_TBL, 7);
  assert.deepEqual(decodeRule(Buffer.concat([hdr, u32Attr(C.FRA_TABLE, 255), u32Attr(250, 1)])),
    { priority: 0, action: 'lookup', table: 255, protocol: 0 });
  hdr.writeUInt8(3, 7); // FR_ACT_NOP
  assert.equal(decodeRule(hdr)!.action, 'other');
  hdr.writeUInt8(C.AF_INET6, 0);
  assert.equal(decodeRule(hdr), undefined);
  assert.throws(() => decodeRule(Buffer.alloc(4)), UplinkdError);
});

test('rule: ipproto, sport/dport ranges (struct fib_rule_port_range), tos and l3mdev round-trip', () => {
  const r: Rule = {
    ...base, priority: 10210, table: 1001, src: '192.168.10.20/32', ipProto: 17,
    sport: { start: 1024, end: 65534 }, dport: { start: 5060, end: 5080 }, tos: 0x10, dscp: 46,
  };
  const p = encodeRule(r);
  assert.equal(p.readUInt8(3), 0x10, 'tos in the header');
  const a = attrMap(p, C.FIB_RULE_HDR_LEN);
  assert.deepEqual([...a.get(C.FRA_IP_PROTO)!], [17]);
  const d = a.get(C.FRA_DPORT_RANGE)!;
  assert.deepEqual([d.readUInt16LE(0), d.readUInt16LE(2)], [5060, 5080]);
  assert.deepEqual(decodeRule(p), r);
  // Linux echoes FRA_DSCP_MASK 0x3f with `dscp N`: the same rule; another mask is another rule.
  assert.deepEqual(decodeRule(Buffer.concat([p, attr(C.FRA_DSCP_MASK, Buffer.from([0x3f]))])), r);
  assert.deepEqual(decodeRule(Buffer.concat([p, attr(C.FRA_DSCP_MASK, Buffer.from([0x38]))]))!.unmodelled, ['dscp_mask=38']);
  // Linux >= 6.16 echoes FRA_DPORT_MASK/FRA_SPORT_MASK 0xffff with a single port: the same rule.
  const single: Rule = { ...base, priority: 10213, table: 1001, ipProto: 6, sport: { start: 5060, end: 5060 }, dport: { start: 80, end: 80 } };
  const sp = encodeRule(single);
  const u16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
  assert.deepEqual(decodeRule(Buffer.concat([sp, attr(C.FRA_DPORT_MASK, u16(0xffff)), attr(C.FRA_SPORT_MASK, u16(0xffff))])), single);
  // A partial mask, or a full one beside a range, selects something else: another rule.
  assert.deepEqual(decodeRule(Buffer.concat([sp, attr(C.FRA_DPORT_MASK, u16(0xfff0))]))!.unmodelled, ['dport_mask=f0ff']);
  assert.deepEqual(decodeRule(Buffer.concat([p, attr(C.FRA_DPORT_MASK, u16(0xffff))]))!.unmodelled, ['dport_mask=ffff']);
  const vrf: Rule = { priority: 1000, action: 'lookup', table: 0, protocol: 0, l3mdev: true };
  assert.equal(attrMap(encodeRule(vrf), C.FIB_RULE_HDR_LEN).get(C.FRA_L3MDEV)![0], 1);
  assert.deepEqual(decodeRule(encodeRule(vrf)), vrf);
  const unreachable: Rule = { priority: 10211, action: 'unreachable', table: 0, protocol: 117, ipProto: 6, dport: { start: 443, end: 443 } };
  assert.deepEqual(decodeRule(encodeRule(unreachable)), unreachable);
});

test('rule: the encoder refuses what the kernel cannot express, with a typed error', () => {
  const r: Rule = { ...base, priority: 1, table: 1001 };
  for (const bad of [
    { dport: { start: 0, end: 10 } }, { dport: { start: 10, end: 9 } }, { sport: { start: 1, end: 65535 } },
    { ipProto: 256 }, { tos: -1 }, { dscp: 64 }, { unmodelled: ['uidrange=e8030000d0070000'] },
  ]) {
    assert.throws(() => encodeRule({ ...r, ...bad }), UplinkdError, JSON.stringify(bad));
  }
});

test('rule: selectors uplinkd never sets are read, so such a rule is another rule', () => {
  const hdr = encodeRule({ ...base, priority: 10100, table: 1001, src: '198.51.100.2/32' });
  const uid = Buffer.alloc(8);
  uid.writeUInt32LE(1000, 0);
  uid.writeUInt32LE(2000, 4);
  const withUid = Buffer.concat([hdr, attr(C.FRA_UID_RANGE, uid), u32Attr(C.FRA_TUN_ID, 7)]);
  assert.deepEqual(decodeRule(withUid)!.unmodelled, ['tun_id=07000000', 'uidrange=e8030000d0070000']);
  // "unset" suppress_ifgroup selects nothing.
  assert.equal(decodeRule(Buffer.concat([hdr, u32Attr(C.FRA_SUPPRESS_IFGROUP, 0xffffffff)]))!.unmodelled, undefined);
  assert.deepEqual(decodeRule(Buffer.concat([hdr, u32Attr(C.FRA_SUPPRESS_IFGROUP, 3)]))!.unmodelled, ['suppress_ifgroup=03000000']);
});

test('rule: short port ranges and random bytes are a typed error or a rule, never another exception', () => {
  const hdr = encodeRule({ ...base, priority: 1, table: 1001 });
  assert.throws(() => decodeRule(Buffer.concat([hdr, attr(C.FRA_DPORT_RANGE, Buffer.from([1, 0]))])), UplinkdError);
  assert.throws(() => decodeRule(Buffer.concat([hdr, attr(C.FRA_IP_PROTO, Buffer.alloc(0))])), UplinkdError);
  let seed = 7;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 2000; i++) {
    const good = encodeRule({ ...base, priority: i, table: 1001, ipProto: 6, dport: { start: 1, end: 2 }, src: '10.0.0.0/8' });
    const buf = Buffer.from(good);
    for (let k = 0; k < 1 + (rand() % 6); k++) buf[rand() % buf.length] = rand() & 0xff;
    const cut = buf.subarray(0, rand() % (buf.length + 1));
    try {
      decodeRule(cut);
    } catch (e) {
      assert.ok(e instanceof UplinkdError, `iteration ${i}: ${String(e)}`);
    }
  }
});
