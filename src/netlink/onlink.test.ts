// RTNH_F_ONLINK on routes (rtm_flags) and nexthop objects (nhm_flags), and device-only nexthops (issue 8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Nexthop, Route } from '../model/types';
import * as C from './constants';
import { ifNamesFrom } from './names';
import { decodeNexthop, encodeNexthop } from './nexthop';
import { decodeRoute, encodeRoute } from './route';

const names = ifNamesFrom([{ index: 2, name: 'ens5' }, { index: 3, name: 'ppp0' }]);

test('route: onlink is RTNH_F_ONLINK in rtm_flags and round-trips; a device-only default has no gateway', () => {
  const r: Route = { table: 1001, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', gateway: '172.31.1.1', dev: 'ens5', onlink: true };
  const p = encodeRoute(r, names);
  assert.equal(p.readUInt32LE(8), C.RTNH_F_ONLINK);
  assert.deepEqual(decodeRoute(p, names), r);
  const plain: Route = { ...r, onlink: undefined };
  delete plain.onlink;
  assert.equal(encodeRoute(plain, names).readUInt32LE(8), 0);
  const dev: Route = { table: 1002, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'link', dev: 'ppp0' };
  assert.deepEqual(decodeRoute(encodeRoute(dev, names), names), dev);
});

test('nexthop: onlink is RTNH_F_ONLINK in nhm_flags and round-trips; a device-only nexthop has no gateway', () => {
  const n: Nexthop = { id: 1001, protocol: 117, gateway: '172.31.1.1', dev: 'ens5', onlink: true };
  const p = encodeNexthop(n, names);
  assert.equal(p.readUInt32LE(4), C.RTNH_F_ONLINK);
  assert.deepEqual(decodeNexthop(p, names), n);
  const dev: Nexthop = { id: 1002, protocol: 117, dev: 'ppp0' };
  assert.equal(encodeNexthop(dev, names).readUInt32LE(4), 0);
  assert.deepEqual(decodeNexthop(encodeNexthop(dev, names), names), dev);
});
