import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Nexthop } from '../model/types';
import { UplinkdError } from '../errors';
import * as C from './constants';
import { ifNamesFrom } from './names';
import { decodeNexthop, encodeNexthop, encodeNexthopDelete } from './nexthop';
import { align4, attrMap, NLA_F_NESTED, parseAttrs } from './wire';

const names = ifNamesFrom([{ index: 4, name: 'wan0' }]);

test('nexthop: gateway + dev, AF_INET, protocol in nhmsg', () => {
  const nh: Nexthop = { id: 1001, protocol: 117, gateway: '198.51.100.1', dev: 'wan0' };
  const p = encodeNexthop(nh, names);
  assert.equal(p.readUInt8(0), C.AF_INET);
  assert.equal(p.readUInt8(2), 117);
  const a = attrMap(p, C.NHMSG_LEN);
  assert.equal(a.get(C.NHA_ID)!.readUInt32LE(0), 1001);
  assert.equal(a.get(C.NHA_OIF)!.readUInt32LE(0), 4);
  assert.deepEqual(decodeNexthop(p, names), nh);
});

test('nexthop: blackhole; a plain nexthop needs a dev', () => {
  const nh: Nexthop = { id: 9, protocol: 117, blackhole: true };
  const p = encodeNexthop(nh, names);
  assert.equal(attrMap(p, C.NHMSG_LEN).get(C.NHA_BLACKHOLE)!.length, 0);
  assert.deepEqual(decodeNexthop(p, names), nh);
  assert.throws(() => encodeNexthop({ id: 9, protocol: 117 }, names), UplinkdError);
});

test('nexthop: multipath group, weight-1 on the wire, AF_UNSPEC', () => {
  const nh: Nexthop = { id: 1000, protocol: 117, group: [{ id: 1001, weight: 1 }, { id: 1002, weight: 256 }] };
  const p = encodeNexthop(nh, names);
  assert.equal(p.readUInt8(0), C.AF_UNSPEC);
  const g = attrMap(p, C.NHMSG_LEN).get(C.NHA_GROUP)!;
  assert.equal(g.length, 16);
  assert.deepEqual([g.readUInt32LE(0), g[4], g.readUInt32LE(8), g[12]], [1001, 0, 1002, 255]);
  assert.equal(attrMap(p, C.NHMSG_LEN).has(C.NHA_GROUP_TYPE), false, 'mpath is the default type');
  assert.deepEqual(decodeNexthop(p, names), nh);
  assert.throws(() => encodeNexthop({ ...nh, group: [{ id: 1, weight: 257 }] }, names), UplinkdError);
});

test('nexthop: resilient group, timers in clock_t (USER_HZ=100), NLA_F_NESTED', () => {
  const nh: Nexthop = { id: 1000, protocol: 117, group: [{ id: 1001, weight: 3 }, { id: 1002, weight: 1 }],
    resilient: { buckets: 128, idleTimer: 120, unbalancedTimer: 0.5 } };
  const p = encodeNexthop(nh, names);
  const attrs = parseAttrs(p, C.NHMSG_LEN);
  const type = attrs.find((x) => x.type === C.NHA_GROUP_TYPE)!;
  assert.equal(type.value.readUInt16LE(0), C.NEXTHOP_GRP_TYPE_RES);
  const rawTypes: number[] = [];
  for (let off = C.NHMSG_LEN; off < p.length; off += align4(p.readUInt16LE(off))) rawTypes.push(p.readUInt16LE(off + 2));
  assert.ok(rawTypes.includes(C.NHA_RES_GROUP | NLA_F_NESTED), 'NHA_RES_GROUP carries NLA_F_NESTED');
  const res = attrMap(attrs.find((x) => x.type === C.NHA_RES_GROUP)!.value);
  assert.equal(res.get(C.NHA_RES_GROUP_BUCKETS)!.readUInt16LE(0), 128);
  assert.equal(res.get(C.NHA_RES_GROUP_IDLE_TIMER)!.readUInt32LE(0), 12000);
  assert.equal(res.get(C.NHA_RES_GROUP_UNBALANCED_TIMER)!.readUInt32LE(0), 50);
  assert.deepEqual(decodeNexthop(p, names), nh);
});

test('nexthop: delete carries only the id; IPv6 skipped; missing id malformed', () => {
  const d = encodeNexthopDelete(77);
  assert.equal(d.length, C.NHMSG_LEN + 8);
  assert.deepEqual([...d.subarray(0, C.NHMSG_LEN)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(attrMap(d, C.NHMSG_LEN).get(C.NHA_ID)!.readUInt32LE(0), 77);
  const v6 = encodeNexthop({ id: 5, protocol: 117, dev: 'wan0' }, names);
  v6.writeUInt8(C.AF_INET6, 0);
  assert.equal(decodeNexthop(v6, names), undefined);
  assert.throws(() => decodeNexthop(Buffer.alloc(C.NHMSG_LEN), names), UplinkdError);
});
