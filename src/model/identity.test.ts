import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareRoutes, compareRules, objectIdentity, RouteMap, sortRoutes, sortRules } from './identity';
import { prng } from '../../test/support/prng';
import type { Change, Nexthop, Route, Rule } from './types';

test('object identities ignore the op (a Change is an OwnedObject), field order and absent fields, and differ between objects', () => {
  const a: Change = { op: 'add', kind: 'rule', rule: { priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.2/32' } };
  const b: Change = { op: 'del', kind: 'rule', rule: { src: '198.51.100.2/32', protocol: 117, table: 1001, action: 'lookup', priority: 10100, oif: undefined } };
  const c: Change = { op: 'add', kind: 'rule', rule: { priority: 10100, action: 'lookup', table: 1002, protocol: 117, src: '198.51.100.2/32' } };
  assert.equal(objectIdentity(a), objectIdentity(b));
  assert.notEqual(objectIdentity(a), objectIdentity(c));
});

test('object keys ignore what the kernel echoes: linkdown, an nhid route\'s resolved path, a full fwmask, "from all"', () => {
  const route = { table: 1001, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1001 } as const;
  assert.equal(
    objectIdentity({ kind: 'route', route }),
    objectIdentity({ kind: 'route', route: { ...route, gateway: '198.51.100.1', dev: 'if1', linkdown: true } }),
  );
  const rule = { priority: 10050, action: 'lookup', table: 1001, protocol: 117, fwmark: 0x1000000, fwmask: 0x7f000000 } as const;
  assert.equal(objectIdentity({ kind: 'rule', rule }), objectIdentity({ kind: 'rule', rule: { ...rule, src: '0.0.0.0/0' } }));
  assert.notEqual(objectIdentity({ kind: 'rule', rule }), objectIdentity({ kind: 'rule', rule: { ...rule, dport: { start: 53, end: 53 } } }));
  const group = { id: 1000, protocol: 117, group: [{ id: 1002, weight: 1 }, { id: 1001, weight: 3 }] };
  assert.equal(
    objectIdentity({ kind: 'nexthop', nexthop: group }),
    objectIdentity({ kind: 'nexthop', nexthop: { ...group, group: [...group.group].reverse() } }),
  );
  assert.notEqual(objectIdentity({ kind: 'nexthop', nexthop: group }), objectIdentity({ kind: 'route', route }));
});

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

test('sortRoutes and sortRules order exactly as sorting with compareRoutes and compareRules (ties, equal keys, any input order)', () => {
  const rnd = prng(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  for (let round = 0; round < 50; round++) {
    const routes: Route[] = Array.from({ length: 60 }, () => ({
      table: pick([1000, 1001, 254]), dst: pick(['0.0.0.0/0', 'default', '10.0.0.0/8', '10.0.0.0/16', '192.168.1.0/24']),
      type: 'unicast', protocol: pick([117, 4]), scope: pick(['link', 'universe'] as const),
      ...(rnd() < 0.3 && { metric: pick([0, 100]) }), ...(rnd() < 0.5 && { dev: pick(['if1', 'if2']) }),
      ...(rnd() < 0.3 && { gateway: pick(['10.0.0.1', '10.0.0.2']) }),
    }));
    assert.deepEqual(sortRoutes(routes), [...routes].sort(compareRoutes));
    const rules: Rule[] = Array.from({ length: 60 }, () => ({
      priority: pick([10100, 10110, 10200]), action: 'lookup', table: pick([1001, 1002, 254]), protocol: pick([117, 4]),
      ...(rnd() < 0.5 && { src: pick(['198.51.100.2/32', '0.0.0.0/0', '10.0.0.0/8']) }), ...(rnd() < 0.5 && { oif: pick(['if1', 'if2']) }),
    }));
    assert.deepEqual(sortRules(rules), [...rules].sort(compareRules));
  }
});

test('RouteMap: one entry per table, prefix and metric; "default" is 0.0.0.0/0 and no metric is metric 0', () => {
  const m = new RouteMap<string>();
  m.set({ table: 1001, dst: 'default' }, 'a');
  assert.equal(m.get({ table: 1001, dst: '0.0.0.0/0', metric: 0 }), 'a');
  assert.equal(m.get({ table: 1002, dst: '0.0.0.0/0' }), undefined, 'another table');
  assert.equal(m.get({ table: 1001, dst: '0.0.0.0/0', metric: 100 }), undefined, 'another metric');
  assert.equal(m.upsert({ table: 1001, dst: '0.0.0.0/0', metric: 100 }, () => 'b'), 'b');
  assert.equal(m.upsert({ table: 1001, dst: '0.0.0.0/0', metric: 100 }, () => 'c'), 'b', 'upsert keeps what is there');
  m.set({ table: 1001, dst: '10.0.0.0/8' }, 'd');
  assert.equal(m.get({ table: 1001, dst: '10.0.0.0/8', metric: 0 }), 'd');
  assert.equal(m.has({ table: 1001, dst: '10.0.0.0/16' }), false, 'another prefix length');
  const seen: string[] = [];
  m.forEach((v) => seen.push(v));
  assert.deepEqual(seen, ['a', 'b', 'd']);
  assert.deepEqual([...m.values()], seen);
});
