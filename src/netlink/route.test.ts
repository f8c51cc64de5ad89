import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Route } from '../model/types';
import { UplinkdError } from '../errors';
import * as C from './constants';
import { ifNamesFrom } from './names';
import { decodeRoute, encodeRoute } from './route';
import { attr, attrMap, u32Attr } from './wire';

const names = ifNamesFrom([{ index: 2, name: 'wan0' }, { index: 3, name: 'wan1' }, { index: 7, name: 'lan0' }]);
const base = { type: 'unicast', protocol: 117, scope: 'universe' } as const;

const roundTrip = (r: Route) => decodeRoute(encodeRoute(r, names), names);

test('route: gateway/dev/src/metric in a table > 255 round-trips via RTA_TABLE', () => {
  const r: Route = { ...base, table: 1001, dst: '0.0.0.0/0', gateway: '198.51.100.1', dev: 'wan0', src: '198.51.100.7', metric: 50 };
  const p = encodeRoute(r, names);
  assert.equal(p.readUInt8(4), C.RT_TABLE_UNSPEC, 'rtm_table cannot hold 1001');
  const a = attrMap(p, C.RTMSG_LEN);
  assert.equal(a.get(C.RTA_TABLE)!.readUInt32LE(0), 1001);
  assert.equal(a.get(C.RTA_OIF)!.readUInt32LE(0), 2);
  assert.deepEqual([...a.get(C.RTA_GATEWAY)!], [198, 51, 100, 1]);
  assert.equal(a.has(C.RTA_DST), false, 'default route carries no RTA_DST');
  assert.deepEqual(roundTrip(r), r);
});

test('route: link-scope network route, small table stays in rtm_table too', () => {
  const r: Route = { ...base, table: 100, dst: '10.1.0.0/16', scope: 'link', dev: 'lan0', src: '10.1.0.1' };
  const p = encodeRoute(r, names);
  assert.equal(p.readUInt8(1), 16);
  assert.equal(p.readUInt8(4), 100);
  assert.equal(p.readUInt8(6), C.RT_SCOPE_LINK);
  assert.deepEqual(roundTrip(r), r);
});

test('route: multipath weights are rtnh_hops+1, per-hop gateway', () => {
  const r: Route = { ...base, table: 1000, dst: '0.0.0.0/0', multipath: [
    { gateway: '198.51.100.1', dev: 'wan0', weight: 1 },
    { gateway: '203.0.113.1', dev: 'wan1', weight: 256 },
  ] };
  const mp = attrMap(encodeRoute(r, names), C.RTMSG_LEN).get(C.RTA_MULTIPATH)!;
  assert.equal(mp.readUInt16LE(0), 16, 'rtnexthop + RTA_GATEWAY');
  assert.equal(mp.readUInt8(3), 0);
  assert.equal(mp.readInt32LE(4), 2);
  assert.equal(mp.readUInt8(16 + 3), 255);
  assert.equal(mp.readInt32LE(16 + 4), 3);
  assert.deepEqual(roundTrip(r), r);
  assert.throws(() => encodeRoute({ ...r, multipath: [{ dev: 'wan0', weight: 0 }] }, names), UplinkdError);
});

test('route: nhid route reads back as just nhid (kernel also reports the resolved nexthop)', () => {
  const r: Route = { ...base, table: 1000, dst: '0.0.0.0/0', nhid: 1000 };
  const p = encodeRoute(r, names);
  // What a dump looks like: RTA_NH_ID plus the compat RTA_GATEWAY/RTA_OIF.
  const dumped = Buffer.concat([p, attr(C.RTA_GATEWAY, Buffer.from([198, 51, 100, 1])), u32Attr(C.RTA_OIF, 2)]);
  assert.deepEqual(decodeRoute(dumped, names), r);
});

test('route: linkdown from rtm_flags, or from every multipath hop', () => {
  const single = encodeRoute({ ...base, table: 1001, dst: '0.0.0.0/0', gateway: '198.51.100.1', dev: 'wan0' }, names);
  single.writeUInt32LE(C.RTNH_F_LINKDOWN | C.RTNH_F_DEAD, 8);
  assert.equal(decodeRoute(single, names)!.linkdown, true);

  const mpRoute: Route = { ...base, table: 1000, dst: '0.0.0.0/0', multipath: [
    { gateway: '198.51.100.1', dev: 'wan0', weight: 1 }, { gateway: '203.0.113.1', dev: 'wan1', weight: 1 }] };
  const p = encodeRoute(mpRoute, names);
  const mpOffset = C.RTMSG_LEN + 8 + 4; // after RTA_TABLE, inside RTA_MULTIPATH
  assert.equal(p.readUInt16LE(C.RTMSG_LEN + 8 + 2), C.RTA_MULTIPATH);
  p.writeUInt8(C.RTNH_F_LINKDOWN, mpOffset + 2);
  assert.equal(decodeRoute(p, names)!.linkdown, undefined, 'one hop down: the route still works');
  p.writeUInt8(C.RTNH_F_DEAD, mpOffset + 16 + 2);
  assert.equal(decodeRoute(p, names)!.linkdown, true);
});

test('route: types, local table, unknown ifindex, IPv6 skipped, unknown attributes ignored', () => {
  const local: Route = { table: 255, dst: '10.1.0.1/32', type: 'local', protocol: 2, scope: 'host', dev: 'lan0', src: '10.1.0.1' };
  assert.deepEqual(roundTrip(local), local);
  for (const type of ['blackhole', 'unreachable', 'prohibit', 'broadcast'] as const) {
    assert.equal(roundTrip({ ...base, table: 5, dst: '192.0.2.0/24', type })!.type, type);
  }
  const p = Buffer.concat([encodeRoute({ ...base, table: 5, dst: '192.0.2.0/24', dev: 'wan0' }, names), u32Attr(99, 1)]);
  p.writeUInt8(C.RTN_UNICAST, 7);
  assert.equal(decodeRoute(p, ifNamesFrom([]))!.dev, 'if2');
  const v6 = Buffer.from(p);
  v6.writeUInt8(C.AF_INET6, 0);
  assert.equal(decodeRoute(v6, names), undefined);
  assert.throws(() => decodeRoute(Buffer.alloc(6), names), UplinkdError);
  assert.throws(() => encodeRoute({ ...base, table: 5, dst: '192.0.2.0/24', dev: 'nope' }, names),
    (e: unknown) => e instanceof UplinkdError && e.code === 'kernel' && e.message === 'no interface nope');
});

test('route: delete sends scope nowhere (match any), like iproute2', () => {
  const p = encodeRoute({ ...base, table: 1001, dst: '10.0.0.0/8', scope: 'link', dev: 'wan0' }, names, true);
  assert.equal(p.readUInt8(6), C.RT_SCOPE_NOWHERE);
});
