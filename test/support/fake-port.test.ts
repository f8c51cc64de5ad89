import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../../src/errors';
import type { Change, Nexthop, Route, Rule } from '../../src/model/types';
import { formatNexthop, formatRoute, formatRule, parseNexthop, parseRoute, parseRule, parseSnapshot } from '../../src/model/text';
import { FakePort } from './fake-port';
import type { KernelEvent } from '../../src/kernel/port';

const WORLD = `
link lo up lower_up
link if1 up lower_up
link if2 up lower_up
addr if1 198.51.100.2/24
addr if2 192.0.2.7/24
`;

const route = (text: string): Change => ({ op: 'add', kind: 'route', route: parseRoute(text) });
const routeOp = (op: 'add' | 'replace' | 'del', text: string): Change => ({ op, kind: 'route', route: parseRoute(text) });
const nh = (op: 'add' | 'replace' | 'del', text: string): Change => ({ op, kind: 'nexthop', nexthop: parseNexthop(text) });
const rule = (op: 'add' | 'del', text: string): Change => ({ op, kind: 'rule', rule: parseRule(text) });

async function rejectsWith(p: Promise<unknown>, errno: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof UplinkdError && e.code === 'kernel' && e.detail.errno === errno);
}

const routes = (port: FakePort): string[] => port.current().routes.map((r: Route) => formatRoute(r));
const rules = (port: FakePort): string[] => port.current().rules.map((r: Rule) => formatRule(r));
const nexthops = (port: FakePort): string[] => port.current().nexthops.map((n: Nexthop) => formatNexthop(n));

test('routes: one per table+dst+metric, EEXIST and ESRCH tolerated, replace swaps or creates', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  await port.apply(route('default via 198.51.100.1 dev if1 table 1001 proto 117'));
  await port.apply(route('default via 192.0.2.1 dev if2 table 1001 proto 117')); // EEXIST: unchanged
  assert.deepEqual(routes(port), ['default via 198.51.100.1 dev if1 table 1001 proto 117']);
  await port.apply(routeOp('replace', 'default via 192.0.2.1 dev if2 table 1001 proto 117'));
  await port.apply(routeOp('replace', 'default via 192.0.2.1 dev if2 table 1001 proto 117 metric 5'));
  assert.deepEqual(routes(port), ['default via 192.0.2.1 dev if2 table 1001 proto 117', 'default via 192.0.2.1 dev if2 table 1001 proto 117 metric 5']);
  await port.apply(routeOp('del', 'default via 192.0.2.1 dev if2 table 1001 proto 117 metric 5'));
  await port.apply(routeOp('del', 'default via 192.0.2.1 dev if2 table 1001 proto 117 metric 5')); // ESRCH
  await port.apply(routeOp('del', 'default table 1001 proto static')); // other protocol: no match
  assert.equal(routes(port).length, 1);
  assert.equal(port.applied.length, 7);
});

test('routes are refused like the kernel refuses them', async () => {
  const port = new FakePort(parseSnapshot(WORLD + 'link if3 down\nlink if4 up\n'));
  await rejectsWith(port.apply(route('default nhid 9 table 1000 proto 117')), 'EINVAL');
  await rejectsWith(port.apply(route('default via 198.51.100.1 dev nosuch table 1 proto 117')), 'ENODEV');
  await rejectsWith(port.apply(route('default via 198.51.100.1 dev if3 table 1 proto 117')), 'ENETDOWN');
  await rejectsWith(port.apply(route('default via 203.0.113.1 dev if1 table 1 proto 117')), 'ENETUNREACH');
  await rejectsWith(port.apply(route('10.0.0.0/8 dev if1 src 10.0.0.1 table 1 proto 117')), 'EINVAL');
  // No carrier is fine (the route is reported linkdown), and lo always exists.
  await port.apply(route('10.0.0.0/8 dev if4 table 1 proto 117'));
  await port.apply(route('127.0.0.0/8 dev lo table 1 proto 117'));
  const snap = await port.snapshot();
  assert.equal(snap.routes.find((r) => r.dev === 'if4')?.linkdown, true);
  assert.equal(snap.routes.find((r) => r.dev === 'lo')?.linkdown, undefined);
  assert.equal(port.applied.length, 2);
});

test('nexthops: groups need existing single members, cannot change kind or buckets, deletion cascades', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  await rejectsWith(port.apply(nh('add', 'id 1000 group 1001,1 proto 117')), 'EINVAL');
  await port.apply(nh('add', 'id 1001 via 198.51.100.1 dev if1 proto 117'));
  await port.apply(nh('add', 'id 1002 via 192.0.2.1 dev if2 proto 117'));
  await port.apply(nh('add', 'id 1000 group 1001,1/1002,3 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117'));
  await rejectsWith(port.apply(nh('add', 'id 7 group 1000 proto 117')), 'EINVAL'); // a group of a group
  await rejectsWith(port.apply(nh('replace', 'id 1001 group 1002 proto 117')), 'EINVAL');
  await rejectsWith(port.apply(nh('replace', 'id 1000 group 1001 type resilient buckets 64 proto 117')), 'EINVAL');
  await rejectsWith(port.apply(nh('replace', 'id 1000 group 1001 proto 117')), 'EINVAL'); // resilient -> mpath
  await port.apply(route('default nhid 1000 table 1000 proto 117'));
  await port.apply(route('default nhid 1002 table 1002 proto 117'));
  const snap = await port.snapshot();
  assert.deepEqual(snap.routes[0]!.multipath, [{ gateway: '198.51.100.1', dev: 'if1', weight: 1 }, { gateway: '192.0.2.1', dev: 'if2', weight: 3 }]);
  assert.equal(snap.routes[1]!.gateway, '192.0.2.1');
  await port.apply(nh('del', 'id 1002'));
  assert.deepEqual(nexthops(port), ['id 1001 via 198.51.100.1 dev if1 proto 117', 'id 1000 group 1001,1 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117']);
  assert.deepEqual(routes(port), ['default nhid 1000 table 1000 proto 117']);
  await port.apply(nh('del', 'id 1001')); // the emptied group goes, and its route
  assert.deepEqual(nexthops(port), []);
  assert.deepEqual(routes(port), []);
});

test('rules: exact duplicates are EEXIST, ordered by priority, delete matches every field', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  await port.apply(rule('add', 'from all lookup 1000 priority 10300 protocol 117'));
  await port.apply(rule('add', 'from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117'));
  await port.apply(rule('add', 'from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117'));
  await port.apply(rule('add', 'from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117'));
  assert.deepEqual(rules(port), [
    'from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117',
    'from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117',
    'from all lookup 1000 priority 10300 protocol 117',
  ]);
  await port.apply(rule('del', 'from 198.51.100.2/32 lookup 1002 priority 10100 protocol 117')); // no such rule
  await port.apply(rule('del', 'from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117'));
  assert.equal(rules(port).length, 2);
  await rejectsWith(port.apply({ op: 'add', kind: 'rule', rule: { priority: 1, action: 'lookup', table: 0, protocol: 117 } }), 'EINVAL');
});

test('interface changes flush like the kernel: admin down, carrier loss, removed address', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  for (const c of [
    nh('add', 'id 1001 via 198.51.100.1 dev if1 proto 117'),
    nh('add', 'id 1002 via 192.0.2.1 dev if2 proto 117'),
    nh('add', 'id 1000 group 1001/1002 proto 117'),
    route('default nhid 1000 table 1000 proto 117'),
    route('default via 198.51.100.1 dev if1 table 1001 proto 117'),
    route('198.51.100.0/24 dev if1 src 198.51.100.2 table 1001 proto 117'),
    route('default via 192.0.2.1 dev if2 table 1002 proto 117'),
    route('192.0.2.0/24 dev if2 src 192.0.2.7 table 1002 proto 117'),
  ]) await port.apply(c);
  const events: KernelEvent[] = [];
  let overruns = 0;
  const unsubscribe = port.subscribe((e) => events.push(e), () => overruns++);

  // if2 loses carrier: its nexthop goes (and with it the group member), its routes stay.
  const noCarrier = parseSnapshot(WORLD.replace('link if2 up lower_up', 'link if2 up'));
  port.setInterfaces(noCarrier.links, noCarrier.addresses);
  assert.deepEqual(nexthops(port), ['id 1001 via 198.51.100.1 dev if1 proto 117', 'id 1000 group 1001,1 proto 117']);
  assert.equal(routes(port).filter((r) => r.includes('dev if2')).length, 2);
  assert.deepEqual(events.map((e) => `${e.kind} ${e.action}`), ['link new']);

  // if1 goes administratively down: every route and nexthop through it goes.
  const down = parseSnapshot(WORLD.replace('link if1 up lower_up', 'link if1 down').replace('link if2 up lower_up', 'link if2 up'));
  port.setInterfaces(down.links, down.addresses);
  assert.deepEqual(nexthops(port), []);
  assert.deepEqual(routes(port), ['default via 192.0.2.1 dev if2 table 1002 proto 117', '192.0.2.0/24 dev if2 src 192.0.2.7 scope link table 1002 proto 117']);

  // if2's address changes: the route preferring the old one goes.
  const renumbered = parseSnapshot(WORLD.replace('addr if2 192.0.2.7/24', 'addr if2 192.0.2.8/24'));
  port.setInterfaces(renumbered.links, renumbered.addresses);
  assert.deepEqual(routes(port), ['default via 192.0.2.1 dev if2 table 1002 proto 117']);
  assert.ok(events.some((e) => e.kind === 'address' && e.action === 'del' && e.summary.includes('192.0.2.7')));

  await port.apply(rule('add', 'from all lookup 5 priority 5'));
  assert.equal(events.at(-1)!.kind, 'rule');
  port.overrun();
  assert.equal(overruns, 1);
  unsubscribe();
  await port.apply(rule('del', 'from all lookup 5 priority 5'));
  assert.equal(events.at(-1)!.action, 'new');
});

test('snapshot reports what the kernel adds and is a copy', async () => {
  const port = new FakePort(parseSnapshot(WORLD + 'rule 5 fwmark 0x10 lookup 7'));
  const snap = await port.snapshot();
  assert.equal(snap.rules[0]!.fwmask, 0xffffffff);
  snap.links.length = 0;
  assert.equal((await port.snapshot()).links.length, 3);
});
