import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import type { Change, Nexthop } from '../model/types';
import { devicesOf, throughDevices, waitingForLink } from './link-flush';

const nexthops = new Map<number, Nexthop>([
  [1, { id: 1, protocol: 117, gateway: '198.51.100.1', dev: 's1' }],
  [2, { id: 2, protocol: 117, gateway: '203.0.113.1', dev: 's2' }],
  [1000, { id: 1000, protocol: 117, group: [{ id: 1, weight: 1 }, { id: 2, weight: 1 }] }],
]);
const viaGroup: Change = { op: 'add', kind: 'route', route: { table: 1000, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1000 } };
const rule: Change = { op: 'add', kind: 'rule', rule: { priority: 10100, table: 1001, action: 'lookup', protocol: 117, src: '198.51.100.2/32' } };
const refused = (errno: string) => new UplinkdError('kernel', errno, { errno });

test('a route through a nexthop group goes out of every member device; a group nexthop too; rules of none', () => {
  assert.deepEqual([...devicesOf(viaGroup, nexthops)].sort(), ['s1', 's2']);
  assert.deepEqual([...devicesOf({ op: 'add', kind: 'nexthop', nexthop: nexthops.get(1000)! }, nexthops)].sort(), ['s1', 's2']);
  assert.equal(devicesOf(rule, nexthops).size, 0);
  assert.equal(throughDevices(viaGroup, new Set(['s2']), nexthops), true);
  assert.equal(throughDevices(viaGroup, new Set(['lan0']), nexthops), false);
});

test('ENETDOWN always waits for the link; EINVAL and ENETUNREACH only through a device with a link event; others are failures', () => {
  const nh: Change = { op: 'add', kind: 'nexthop', nexthop: nexthops.get(2)! };
  assert.equal(waitingForLink(nh, refused('ENETDOWN'), new Set(), nexthops), true);
  assert.equal(waitingForLink(nh, refused('EINVAL'), new Set(['s2']), nexthops), true);
  assert.equal(waitingForLink(nh, refused('ENETUNREACH'), new Set(['s2']), nexthops), true);
  assert.equal(waitingForLink(nh, refused('EINVAL'), new Set(['s1']), nexthops), false);
  assert.equal(waitingForLink(nh, refused('EPERM'), new Set(['s2']), nexthops), false);
});
