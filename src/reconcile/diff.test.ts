import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../config/types';
import { FakePort } from '../../test/support/fake-port';
import type { Facts } from '../model/facts';
import type { Change, DesiredState, KernelState } from '../model/types';
import { plan } from '../plan/planner';
import { formatChange, parseSnapshot } from '../model/text';
import { testConfig } from '../../test/support/test-config';
import { diff } from './diff';
import { reconcile } from './reconcile';

const config: Config = testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
  { name: 'isp2', interface: 'vlan102', weight: 3 },
], { lan: ['lan0'] });

const WORLD = `
link lo up lower_up
link lan0 up lower_up
link if1 up lower_up
link vlan102 up lower_up kind vlan
addr lan0 10.0.0.1/24
addr if1 198.51.100.2/24
addr vlan102 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20
`;
// Other programs' objects that share the numbers uplinkd uses.
const FOREIGN = `
rule 10150 from all lookup 77
rule 10100 from 192.0.2.99/32 lookup 1001 protocol static
route table 1001 203.0.113.0/24 via 198.51.100.9 dev if1 proto static
route table 77 default via 198.51.100.1 dev if1 proto static
nexthop id 42 via 198.51.100.1 dev if1 proto static
`;
const EMPTY: DesiredState = { routes: [], rules: [], nexthops: [] };

const factsOf = (kernel: KernelState): Facts => ({ kernel, leases: [], health: {} });
const show = (changes: Change[]): string[] => changes.map(formatChange);

/** plan -> diff -> reconcile against the fake kernel, once. */
async function converge(port: FakePort, cfg: Config = config): Promise<Change[]> {
  const kernel = await port.snapshot();
  const changes = diff(plan(cfg, factsOf(kernel)).desired, kernel, cfg);
  const { failed } = await reconcile(port, changes);
  assert.deepEqual(failed.map((f) => `${formatChange(f.change)}: ${f.error.message}`), []);
  return changes;
}

async function again(port: FakePort, cfg: Config = config): Promise<string[]> {
  const kernel = await port.snapshot();
  return show(diff(plan(cfg, factsOf(kernel)).desired, kernel, cfg));
}

test('from an empty kernel: adds only, nexthops, then groups, then routes (link routes first), then rules', () => {
  const kernel = parseSnapshot(WORLD);
  const changes = diff(plan(config, factsOf(kernel)).desired, kernel, config);
  assert.ok(changes.every((c) => c.op === 'add'));
  const order = changes.map((c) => (c.kind === 'nexthop' ? (c.nexthop.group ? 'group' : 'nexthop') : c.kind));
  assert.deepEqual(order, [
    'nexthop', 'nexthop', 'group',
    ...Array(11).fill('route'),
    ...Array(6).fill('rule'),
  ]);
  const routes = show(changes).filter((c) => c.startsWith('ip route'));
  const firstGateway = routes.findIndex((r) => / via | nhid /.test(r));
  assert.ok(routes.slice(firstGateway).every((r) => / via | nhid /.test(r)), 'link routes come before routes through a gateway');
});

test('idempotence: plan -> diff -> apply -> diff again is empty', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  assert.ok((await converge(port)).length > 0);
  assert.deepEqual(await again(port), []);
});

test('foreign rules, routes and nexthops survive, even inside the band and the tables', async () => {
  const port = new FakePort(parseSnapshot(WORLD + FOREIGN));
  const foreign = parseSnapshot(FOREIGN);
  await converge(port);
  assert.deepEqual(await again(port), []);
  const after = port.current();
  for (const r of foreign.rules) assert.ok(after.rules.some((o) => JSON.stringify(o) === JSON.stringify(r)), `rule ${JSON.stringify(r)} lost`);
  for (const r of foreign.routes) assert.ok(after.routes.some((o) => JSON.stringify(o) === JSON.stringify(r)), `route ${r.dst} lost`);
  assert.ok(after.nexthops.some((n) => n.id === 42));
  // Tearing down leaves them too.
  const down = diff(EMPTY, await port.snapshot(), config);
  assert.ok(down.every((c) => c.op === 'del' && (c.kind === 'rule' ? c.rule.protocol : c.kind === 'route' ? c.route.protocol : c.nexthop.protocol) === 117));
});

test('a desired object whose identity a foreign object holds is left alone', () => {
  const kernel = parseSnapshot(WORLD + 'route table 1001 127.0.0.0/8 dev lo proto static\nnexthop id 1001 via 198.51.100.1 dev if1 proto static\n');
  const changes = show(diff(plan(config, factsOf(kernel)).desired, kernel, config));
  assert.ok(!changes.some((c) => c.includes('127.0.0.0/8') && c.includes('table 1001')));
  assert.ok(!changes.some((c) => c.startsWith('ip nexthop add id 1001 ')));
});

/** isp2 (vlan102) renumbered by DHCP to 203.0.113.50/25 via 203.0.113.1 on `port`: the facts then, and the changes diff() plans, as `ip` lines. */
async function renumberIsp2(port: FakePort): Promise<{ facts: Facts; changes: string[] }> {
  const renumbered = parseSnapshot(WORLD.replace('addr vlan102 192.0.2.7/24 dynamic', 'addr vlan102 203.0.113.50/25 dynamic')
    .replace('default via 192.0.2.1 dev vlan102', 'default via 203.0.113.1 dev vlan102'));
  port.setInterfaces(renumbered.links, renumbered.addresses);
  const kernel = await port.snapshot();
  const facts = factsOf({ ...kernel, routes: [...kernel.routes.filter((r) => r.table !== 254), ...renumbered.routes] });
  return { facts, changes: show(diff(plan(config, facts).desired, facts.kernel, config)) };
}

test('DHCP renumbering: the stale from rule and routes go, the new ones come, the gateway is replaced', async () => {
  const port = new FakePort(parseSnapshot(WORLD + FOREIGN));
  await converge(port);
  const { changes } = await renumberIsp2(port);
  assert.ok(changes.includes('ip rule add from 203.0.113.50/32 lookup 1002 priority 10100 protocol 117'));
  assert.ok(changes.includes('ip rule del from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117'));
  assert.ok(changes.includes('ip route replace default via 203.0.113.1 dev vlan102 table 1002 proto 117'));
  assert.ok(changes.includes('ip nexthop replace id 1002 via 203.0.113.1 dev vlan102 proto 117'));
  assert.ok(changes.includes('ip route del 192.0.2.0/24 dev vlan102 scope link table 1001 proto 117'));
  assert.ok(changes.includes('ip route add 203.0.113.0/25 dev vlan102 src 203.0.113.50 scope link table 1002 proto 117'));
  // The kernel already dropped the route preferring the old address: no delete for it.
  assert.ok(!changes.some((c) => c.includes('src 192.0.2.7')));
  assert.ok(!changes.some((c) => c.includes('protocol static') || c.includes('lookup 77')));
  // Order: adds and replaces before deletions.
  const firstDel = changes.findIndex((c) => c.includes(' del '));
  assert.ok(changes.slice(firstDel).every((c) => c.includes(' del ')));
});

test('nexthop replaces come after the route and rule adds (the kernel walks every table for each), before deletes', async () => {
  // isp2 renumbered in one step: its nexthop is replaced (a walk of every route the kernel holds, since the
  // balance group routes through it); the new table routes and rule must not wait behind that walk.
  const port = new FakePort(parseSnapshot(WORLD));
  await converge(port);
  const { facts, changes } = await renumberIsp2(port);
  const at = (text: string): number => {
    const i = changes.indexOf(text);
    assert.ok(i >= 0, `${text} missing from:\n${changes.join('\n')}`);
    return i;
  };
  const replace = at('ip nexthop replace id 1002 via 203.0.113.1 dev vlan102 proto 117');
  assert.ok(at('ip route replace default via 203.0.113.1 dev vlan102 table 1002 proto 117') < replace);
  assert.ok(at('ip route add 203.0.113.0/25 dev vlan102 src 203.0.113.50 scope link table 1002 proto 117') < replace);
  assert.ok(at('ip rule add from 203.0.113.50/32 lookup 1002 priority 10100 protocol 117') < replace);
  assert.ok(replace < at('ip rule del from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117'));
  // The fake kernel accepts them in that order (it refuses a group naming a missing member, a route on a missing nexthop).
  const { failed } = await reconcile(port, diff(plan(config, facts).desired, facts.kernel, config));
  assert.deepEqual(failed.map((f) => f.error.message), []);
});

test('a group gaining a member: the member is added first, the group replaced after the member\'s table and rule', async () => {
  // isp2 without a default path first (no gateway anywhere): the balance group holds isp1 only.
  const port = new FakePort(parseSnapshot(WORLD.replace('route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20\n', '')));
  await converge(port);
  assert.deepEqual(port.current().nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001]);
  const kernel = await port.snapshot();
  const facts = factsOf({ ...kernel, routes: [...kernel.routes, ...parseSnapshot(WORLD).routes] });
  const changes = diff(plan(config, facts).desired, facts.kernel, config);
  const text = show(changes);
  const member = text.indexOf('ip nexthop add id 1002 via 192.0.2.1 dev vlan102 proto 117');
  const group = text.findIndex((c) => c.startsWith('ip nexthop replace id 1000 group 1001'));
  const table = text.indexOf('ip route add default via 192.0.2.1 dev vlan102 table 1002 proto 117');
  assert.ok(member >= 0 && group >= 0 && table >= 0, text.join('\n'));
  assert.ok(member < table && table < group, text.join('\n'));
  const { failed } = await reconcile(port, changes);
  assert.deepEqual(failed.map((f) => f.error.message), []);
  assert.deepEqual(port.current().nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001, 1002]);
});

test('a group that only loses members which are deleted is not replaced: deleting the member shrinks it', async () => {
  // isp2 loses its default path (the DHCP client's route goes): its nexthop goes, and with it its place in the
  // balance group. A replace of the group would make the kernel walk every table; the delete alone does not.
  const port = new FakePort(parseSnapshot(WORLD));
  await converge(port);
  assert.deepEqual(port.current().nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001, 1002]);
  const kernel = await port.snapshot();
  const facts = factsOf({ ...kernel, routes: kernel.routes.filter((r) => !(r.table === 254 && r.dst === '0.0.0.0/0')) });
  const changes = diff(plan(config, facts).desired, facts.kernel, config);
  const text = show(changes);
  assert.ok(text.includes('ip nexthop del id 1002'), text.join('\n'));
  assert.ok(!text.some((c) => c.startsWith('ip nexthop replace id 1000')), text.join('\n'));
  const { failed } = await reconcile(port, changes);
  assert.deepEqual(failed.map((f) => f.error.message), []);
  assert.deepEqual(port.current().nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001]);
  // The group left is the one the plan wants: nothing more to change.
  const after = await port.snapshot();
  const next = { ...after, routes: after.routes.filter((r) => !(r.table === 254 && r.dst === '0.0.0.0/0')) };
  assert.deepEqual(show(diff(plan(config, factsOf(next)).desired, next, config)), []);
});

test('a group that loses a member and changes otherwise (weights) is still replaced', () => {
  const kernel = parseSnapshot(WORLD);
  const desired = plan(config, factsOf(kernel)).desired;
  const observed: KernelState = { ...kernel, nexthops: [...desired.nexthops.map((n) => (n.group ? { ...n, group: n.group.map((m) => ({ ...m, weight: m.weight + 1 })) } : n)),
    { id: 1003, gateway: '198.51.100.9', dev: 'if1', protocol: 117 }].map((n) => (n.id === 1000 ? { ...n, group: [...n.group!, { id: 1003, weight: 1 }] } : n)) };
  const text = show(diff(desired, observed, config));
  assert.ok(text.includes('ip nexthop del id 1003'), text.join('\n'));
  assert.ok(text.some((c) => c.startsWith('ip nexthop replace id 1000 group')), text.join('\n'));
});

test('down: diffing against an empty desired state removes exactly what uplinkd owns, rules first, singles last', async () => {
  const port = new FakePort(parseSnapshot(WORLD + FOREIGN));
  await converge(port);
  const owned = port.current();
  const ownedCount = owned.routes.filter((r) => r.protocol === 117).length + owned.rules.filter((r) => r.protocol === 117).length
    + owned.nexthops.filter((n) => n.protocol === 117).length;
  const down = diff(EMPTY, await port.snapshot(), config);
  assert.equal(down.length, ownedCount);
  const kinds = down.map((c) => (c.kind === 'nexthop' ? (c.nexthop.group ? 'group' : 'nexthop') : c.kind));
  assert.deepEqual(kinds, [...kinds].sort((a, b) => ['rule', 'route', 'group', 'nexthop'].indexOf(a) - ['rule', 'route', 'group', 'nexthop'].indexOf(b)));
  await reconcile(port, down);
  const left = port.current();
  assert.deepEqual(left.rules, [...parseSnapshot(FOREIGN).rules].sort((a, b) => a.priority - b.priority)); // a kernel lists rules by priority
  assert.deepEqual(left.routes.filter((r) => r.protocol === 117), []);
  assert.deepEqual(left.nexthops.map((n) => n.id), [42]);
});

test('objects of our protocol outside the band or the tables (an earlier configuration\'s) are ours and go', () => {
  const kernel = parseSnapshot(WORLD + 'rule 9000 from all lookup 5 protocol 117\nroute table 5 default via 198.51.100.1 dev if1 proto 117\n');
  assert.deepEqual(show(diff(EMPTY, kernel, config)), [
    'ip rule del from all lookup 5 priority 9000 protocol 117',
    'ip route del default via 198.51.100.1 dev if1 table 5 proto 117',
  ]);
});

test('objects of another protocol in our tables and band are not ours', () => {
  const kernel = parseSnapshot(WORLD + 'rule 10150 from all lookup 1001 protocol 4\nroute table 1001 10.8.0.0/16 via 198.51.100.1 dev if1 proto 4\n');
  assert.deepEqual(diff(EMPTY, kernel, config), []);
});

test('kernel echoes do not cause churn: linkdown, nhid routes echoing their hops, metric 0, group member order', () => {
  const desired = plan(config, factsOf(parseSnapshot(WORLD))).desired;
  const observed = parseSnapshot(WORLD + `
nexthop id 1001 via 198.51.100.1 dev if1 proto 117
nexthop id 1002 via 192.0.2.1 dev vlan102 proto 117
nexthop id 1000 group 1002,3/1001,1 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117
route default nhid 1000 table 1000 proto 117 metric 0 nexthop via 198.51.100.1 dev if1 weight 1 nexthop via 192.0.2.1 dev vlan102 weight 3
route default via 198.51.100.1 dev if1 table 1001 proto 117 linkdown
`);
  const changes = show(diff(desired, observed, config));
  assert.ok(!changes.some((c) => c.includes('table 1000') || c.includes('nexthop')), changes.join('\n'));
  assert.ok(!changes.some((c) => c.includes('default via 198.51.100.1')));
});

test('a resilient group whose bucket count changes is deleted and re-added, and its route refreshed', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  await converge(port);
  const bigger: Config = { ...config, resilient: { ...config.resilient, buckets: 256 } };
  const changes = await converge(port, bigger);
  assert.deepEqual(show(changes), [
    'ip nexthop del id 1000',
    'ip nexthop add id 1000 group 1001,1/1002,3 type resilient buckets 256 idle_timer 30 unbalanced_timer 0 proto 117',
    'ip route replace default nhid 1000 table 1000 proto 117',
  ]);
  assert.deepEqual(await again(port, bigger), []);
});

test('reconcile continues after a failure and reports it', async () => {
  const port = new FakePort(parseSnapshot(WORLD));
  port.failWhen((c) => c.kind === 'nexthop' && c.nexthop.id === 1002, 'EPERM');
  const kernel = await port.snapshot();
  const changes = diff(plan(config, factsOf(kernel)).desired, kernel, config);
  const result = await reconcile(port, changes);
  // 1002 fails, so does the group using it and the route using the group; the rest goes in.
  assert.deepEqual(result.failed.map((f) => formatChange(f.change).split(' ').slice(0, 5).join(' ')), [
    'ip nexthop add id 1002', 'ip nexthop add id 1000', 'ip route add default nhid',
  ]);
  assert.equal(result.failed[0]!.error.detail.errno, 'EPERM');
  assert.equal(result.applied.length, changes.length - 3);
});

/** Applies `changes` one by one; counts the nexthop replaces the kernel would walk every table for (a route uses the nexthop or a group holding it). */
async function applyCountingWalks(port: FakePort, changes: Change[]): Promise<number> {
  let walks = 0;
  for (const c of changes) {
    if (c.kind === 'nexthop' && c.op === 'replace') {
      const { routes, nexthops } = port.current();
      const parents = nexthops.filter((n) => n.group?.some((m) => m.id === c.nexthop.id)).map((n) => n.id);
      if (routes.some((r) => r.nhid === c.nexthop.id || parents.includes(r.nhid!))) walks++;
    }
    await port.apply(c);
  }
  return walks;
}

test('with flow pinning, a renumbering\'s nexthop replace happens while stand-ins carry the balanced default: no walk, same end state', async () => {
  const pinned: Config = { ...config, pinning: { enabled: true, markMask: 0x7f000000 } };
  const plainPort = new FakePort(parseSnapshot(WORLD));
  const swapPort = new FakePort(parseSnapshot(WORLD));
  await converge(plainPort);
  await converge(swapPort, pinned);
  const plain = await renumberIsp2(plainPort);
  const swapped = await renumberIsp2(swapPort);
  const plainChanges = diff(plan(config, plain.facts).desired, plain.facts.kernel, config);
  const swapChanges = diff(plan(pinned, swapped.facts).desired, swapped.facts.kernel, pinned);
  assert.ok(plainChanges.every((c) => !c.standIn), 'without pinning the buckets matter: no stand-ins');
  assert.equal(await applyCountingWalks(plainPort, plainChanges), 1);
  assert.equal(await applyCountingWalks(swapPort, swapChanges), 0);
  const text = show(swapChanges);
  const at = (prefix: string): number => text.findIndex((c) => c.startsWith(prefix));
  // A stand-in member with the new gateway and a stand-in group holding it; the default moves there and back.
  const standIn = at('ip nexthop add id 4293918720 via 203.0.113.1 dev vlan102 proto 117');
  const standInGroup = at('ip nexthop add id 4293918721 group 1001,1/4293918720,3');
  const moved = at('ip route replace default nhid 4293918721 table 1000 proto 117');
  const replaced = at('ip nexthop replace id 1002 via 203.0.113.1 dev vlan102 proto 117');
  const back = at('ip route replace default nhid 1000 table 1000 proto 117');
  const gone = at('ip nexthop del id 4293918721');
  assert.ok(standIn >= 0 && standIn < standInGroup && standInGroup < moved && moved < replaced && replaced < back && back < gone, text.join('\n'));
  // The kernel ends where the plain replace leaves it: nothing of the stand-ins stays, the group keeps its id
  // (rules differ only by pinning's fwmark rules).
  const strip = (s: KernelState) => ({ routes: s.routes, nexthops: s.nexthops });
  assert.deepEqual(strip(swapPort.current()), strip(plainPort.current()));
  const after = await swapPort.snapshot();
  const renumbered = { ...after, routes: [...after.routes.filter((r) => r.table !== 254), ...swapped.facts.kernel.routes.filter((r) => r.table === 254)] };
  assert.deepEqual(show(diff(plan(pinned, factsOf(renumbered)).desired, renumbered, pinned)), []);
});

test('no stand-in swap for a group that another program\'s route uses too (its walk happens anyway)', async () => {
  const pinned: Config = { ...config, pinning: { enabled: true, markMask: 0x7f000000 } };
  const port = new FakePort(parseSnapshot(WORLD));
  await converge(port, pinned);
  await port.apply({ op: 'add', kind: 'route', route: { table: 77, dst: '0.0.0.0/0', type: 'unicast', protocol: 4, scope: 'universe', nhid: 1000 } });
  const { facts } = await renumberIsp2(port);
  const changes = diff(plan(pinned, facts).desired, facts.kernel, pinned);
  assert.deepEqual(changes.filter((c) => c.standIn).map(formatChange), []);
  assert.ok(show(changes).includes('ip nexthop replace id 1002 via 203.0.113.1 dev vlan102 proto 117'));
});
