import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Rule } from '../model/types';
import { UplinkdError } from '../errors';
import * as C from './constants';
import { decodeRule, encodeRule } from './rule';
import { attrMap, u32Attr } from './wire';

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
