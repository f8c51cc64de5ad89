import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Nexthop, Route, Rule } from '../model/types';
import { objectIdentity } from './identity';

test('objectIdentity: the planned object and the kernel\'s report of it are one identity; any field uplinkd sets makes another', () => {
  const planned: Rule = { priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.2/32' };
  // As the kernel reports it: fields in another order, the full fwmask of no mark, "from all" destination, an undefined key.
  const reported: Rule = { src: '198.51.100.2/32', dst: '0.0.0.0/0', protocol: 117, table: 1001, action: 'lookup', priority: 10100, oif: undefined };
  assert.equal(objectIdentity({ kind: 'rule', rule: planned }), objectIdentity({ kind: 'rule', rule: reported }));
  assert.notEqual(objectIdentity({ kind: 'rule', rule: planned }), objectIdentity({ kind: 'rule', rule: { ...planned, table: 1002 } }));
  assert.notEqual(objectIdentity({ kind: 'rule', rule: planned }), objectIdentity({ kind: 'rule', rule: { ...planned, ipProto: 6 } }));

  const route: Route = { table: 1000, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1000 };
  // The kernel echoes the group's gateway and device on an nhid route: not part of the route.
  const echoed: Route = { ...route, dst: 'default', gateway: '198.51.100.1', dev: 'if1' };
  assert.equal(objectIdentity({ kind: 'route', route }), objectIdentity({ kind: 'route', route: echoed }));
  const via: Route = { table: 1001, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', gateway: '198.51.100.1', dev: 'if1' };
  assert.notEqual(objectIdentity({ kind: 'route', route: via }), objectIdentity({ kind: 'route', route: { ...via, gateway: '198.51.100.254' } }));

  const group: Nexthop = { id: 1000, protocol: 117, group: [{ id: 1001, weight: 1 }, { id: 1002, weight: 3 }], resilient: { buckets: 128, idleTimer: 120, unbalancedTimer: 0 } };
  const reordered: Nexthop = { ...group, group: [{ id: 1002, weight: 3 }, { id: 1001, weight: 1 }] };
  assert.equal(objectIdentity({ kind: 'nexthop', nexthop: group }), objectIdentity({ kind: 'nexthop', nexthop: reordered }), 'member order is not identity');
  const reweighted: Nexthop = { ...group, group: [{ id: 1001, weight: 2 }, { id: 1002, weight: 3 }] };
  assert.notEqual(objectIdentity({ kind: 'nexthop', nexthop: group }), objectIdentity({ kind: 'nexthop', nexthop: reweighted }));
  // One kind's identity never equals another's.
  assert.match(objectIdentity({ kind: 'nexthop', nexthop: group }), /^nexthop /);
  assert.match(objectIdentity({ kind: 'route', route }), /^route /);
});
