import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Facts, HealthVerdict, Lease } from '../model/facts';
import type { Config } from '../config/types';
import { plan, type Plan, type UplinkStatus } from './planner';
import { formatNexthop, formatRoute, formatRule, parseSnapshot } from '../model/text';
import { objectIdentity } from '../model/identity';
import { testConfig } from '../../test/support/test-config';
import { MONITOR_DEFAULTS } from '../config/defaults';

function facts(snapshot: string, more: { leases?: Lease[]; health?: Record<string, HealthVerdict> } = {}): Facts {
  return { kernel: parseSnapshot(snapshot), leases: more.leases ?? [], health: more.health ?? {} };
}

/** The desired state as `ip` argument lines, so expectations read like `ip route show`. */
function lines(p: Plan): { routes: string[]; rules: string[]; nexthops: string[] } {
  return {
    routes: p.desired.routes.map(formatRoute),
    rules: p.desired.rules.map(formatRule),
    nexthops: p.desired.nexthops.map(formatNexthop),
  };
}

function status(p: Plan, name: string): UplinkStatus {
  const u = p.uplinks.find((s) => s.name === name);
  assert.ok(u, `no status for ${name}`);
  return u;
}

// A static uplink on if1 and a DHCP uplink on VLAN 102 of a trunk, one LAN.
const twoUplinks = (more: Partial<Config> = {}): Config => testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', weight: 1 },
  { name: 'isp2', interface: 'vlan102', weight: 3 },
], { lan: ['lan0'], ...more });

const BASE = `
link lo up lower_up
link lan0 up lower_up
link if1 up lower_up
link trunk0 up lower_up
link vlan101 up lower_up kind vlan
link vlan102 up lower_up kind vlan
addr lo 127.0.0.1/8 scope host
addr lan0 10.0.0.1/24
addr if1 198.51.100.2/24
`;
const DHCP_UP = `
addr vlan102 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20
route table main 192.0.2.0/24 dev vlan102 proto kernel scope link src 192.0.2.7
`;

test('static and DHCP uplinks: tables, rules, nexthops and the balance group as in the design', () => {
  const p = plan(twoUplinks(), facts(BASE + DHCP_UP));
  assert.deepEqual(lines(p), {
    routes: [
      'default nhid 1000 table 1000 proto 117',
      'default via 198.51.100.1 dev if1 table 1001 proto 117',
      '10.0.0.0/24 dev lan0 scope link table 1001 proto 117',
      '127.0.0.0/8 dev lo scope link table 1001 proto 117',
      '192.0.2.0/24 dev vlan102 scope link table 1001 proto 117',
      '198.51.100.0/24 dev if1 src 198.51.100.2 scope link table 1001 proto 117',
      'default via 192.0.2.1 dev vlan102 table 1002 proto 117',
      '10.0.0.0/24 dev lan0 scope link table 1002 proto 117',
      '127.0.0.0/8 dev lo scope link table 1002 proto 117',
      '192.0.2.0/24 dev vlan102 src 192.0.2.7 scope link table 1002 proto 117',
      '198.51.100.0/24 dev if1 scope link table 1002 proto 117',
    ],
    rules: [
      'from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117',
      'from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117',
      'from all oif if1 lookup 1001 priority 10110 protocol 117',
      'from all oif vlan102 lookup 1002 priority 10110 protocol 117',
      'from all lookup main suppress_prefixlength 0 priority 10200 protocol 117',
      'from all lookup 1000 priority 10300 protocol 117',
    ],
    nexthops: [
      'id 1000 group 1001,1/1002,3 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117',
      'id 1001 via 198.51.100.1 dev if1 proto 117',
      'id 1002 via 192.0.2.1 dev vlan102 proto 117',
    ],
  });
  assert.deepEqual(p.warnings, []);
  const isp2 = status(p, 'isp2');
  assert.equal(isp2.state, 'ready');
  assert.equal(isp2.address, '192.0.2.7');
  assert.equal(isp2.network, '192.0.2.0/24');
  assert.equal(isp2.gateway, '192.0.2.1');
  assert.equal(isp2.gatewaySource, 'route');
  assert.equal(status(p, 'isp1').gatewaySource, 'config');
  assert.ok(p.uplinks.every((u) => u.inDefault));
});

test('the plan does not depend on the order the kernel reported objects in', () => {
  const f = facts(BASE + DHCP_UP + 'route table 77 default via 192.0.2.3 dev vlan102 proto static metric 20\n');
  const reversed: Facts = {
    ...f,
    kernel: {
      links: [...f.kernel.links].reverse(),
      addresses: [...f.kernel.addresses].reverse(),
      routes: [...f.kernel.routes].reverse(),
      rules: [...f.kernel.rules].reverse(),
      nexthops: [...f.kernel.nexthops].reverse(),
    },
  };
  assert.deepEqual(plan(twoUplinks(), reversed), plan(twoUplinks(), f));
});

test('DHCP gateway: the lowest-metric default route on the interface in any table, ignoring our own and off-network ones', () => {
  const p = plan(twoUplinks(), facts(BASE + `
addr vlan102 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20
route table 50 default via 192.0.2.9 dev vlan102 proto static metric 10
route table 1002 default via 192.0.2.99 dev vlan102 proto 117
route table main default via 203.0.113.1 dev vlan102 proto static metric 1
route table main default via 198.51.100.1 dev if1 proto static metric 0
`));
  const isp2 = status(p, 'isp2');
  assert.equal(isp2.gateway, '192.0.2.9');
  assert.equal(isp2.gatewaySource, 'route');
  assert.ok(lines(p).routes.includes('default via 192.0.2.9 dev vlan102 table 1002 proto 117'));
  assert.ok(lines(p).nexthops.includes('id 1002 via 192.0.2.9 dev vlan102 proto 117'));
});

test('DHCP gateway found inside a multipath route and through a foreign nexthop object', () => {
  const mp = plan(twoUplinks(), facts(BASE + `
addr vlan102 192.0.2.7/24 dynamic
route table main default proto static nexthop via 198.51.100.1 dev if1 weight 1 nexthop via 192.0.2.5 dev vlan102 weight 1
`));
  assert.equal(status(mp, 'isp2').gateway, '192.0.2.5');
  const nh = plan(twoUplinks(), facts(BASE + `
addr vlan102 192.0.2.7/24 dynamic
nexthop id 7 via 192.0.2.6 dev vlan102 proto static
route table main default nhid 7 proto static
`));
  assert.equal(status(nh, 'isp2').gateway, '192.0.2.6');
});

test('DHCP gateway from the lease when the kernel shows no default route, only for the lease of the current address', () => {
  const lease = (address: string): Lease => ({
    interface: 'vlan102', client: 'dhclient', file: '/var/lib/dhcp/dhclient.vlan102.leases', address, gateway: '192.0.2.1',
  });
  const snap = BASE + 'addr vlan102 192.0.2.7/24 dynamic\n';
  const p = plan(twoUplinks(), facts(snap, { leases: [lease('192.0.2.7')] }));
  const isp2 = status(p, 'isp2');
  assert.equal(isp2.state, 'ready');
  assert.equal(isp2.gateway, '192.0.2.1');
  assert.equal(isp2.gatewaySource, 'lease');
  assert.equal(p.warnings.length, 1);
  assert.match(p.warnings[0]!, /isp2.*192\.0\.2\.1.*lease/);

  const stale = plan(twoUplinks(), facts(snap, { leases: [lease('192.0.2.8')] }));
  assert.equal(status(stale, 'isp2').state, 'no-gateway');
  assert.equal(status(stale, 'isp2').inDefault, false);
  // Without a gateway the table still routes the uplink's own network and the rules stay.
  const l = lines(stale);
  assert.ok(l.routes.includes('192.0.2.0/24 dev vlan102 src 192.0.2.7 scope link table 1002 proto 117'));
  assert.ok(!l.routes.some((r) => r.startsWith('default via') && r.includes('table 1002')));
  assert.ok(l.rules.includes('from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117'));
  assert.deepEqual(l.nexthops, [
    'id 1000 group 1001,1 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117',
    'id 1001 via 198.51.100.1 dev if1 proto 117',
  ]);
});

test('DHCP uplink without an address is waiting: oif rule only, no from rule, not in the default', () => {
  const p = plan(twoUplinks(), facts(BASE));
  const isp2 = status(p, 'isp2');
  assert.equal(isp2.state, 'waiting');
  assert.equal(isp2.reason, 'waiting for an address on vlan102');
  assert.equal(isp2.address, undefined);
  const l = lines(p);
  assert.ok(!l.rules.some((r) => r.includes('lookup 1002') && r.startsWith('from 1')));
  assert.ok(l.rules.includes('from all oif vlan102 lookup 1002 priority 10110 protocol 117'));
  assert.ok(!l.nexthops.some((n) => n.startsWith('id 1002')));
  assert.deepEqual(l.routes.filter((r) => r.includes('table 1002')), [
    '10.0.0.0/24 dev lan0 scope link table 1002 proto 117',
    '127.0.0.0/8 dev lo scope link table 1002 proto 117',
    '198.51.100.0/24 dev if1 scope link table 1002 proto 117',
  ]);
});

test('DHCP address choice: dynamic before static, primary before secondary, then the lowest', () => {
  const p = plan(twoUplinks(), facts(BASE + `
addr vlan102 192.0.2.3/24
addr vlan102 192.0.2.20/24 dynamic secondary
addr vlan102 192.0.2.9/24 dynamic
addr vlan102 192.0.2.8/24 dynamic
addr vlan102 169.254.1.1/16 scope link
`));
  assert.equal(status(p, 'isp2').address, '192.0.2.8');
});

test('every global address on an uplink\'s interface gets its rule (an alias, a routed block), unless another uplink shares the interface', () => {
  const more = 'addr if1 198.51.100.3/24 secondary\naddr if1 203.0.113.9/29\naddr if1 169.254.7.7/16 scope link\n';
  const from = (p: Plan) => lines(p).rules.filter((r) => /^from \d/.test(r) && r.includes('lookup 1001'));
  assert.deepEqual(from(plan(twoUplinks(), facts(BASE + more + DHCP_UP))), [
    'from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117',
    'from 198.51.100.3/32 lookup 1001 priority 10100 protocol 117',
    'from 203.0.113.9/32 lookup 1001 priority 10100 protocol 117',
  ]);
  const shared = testConfig([
    { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
    { name: 'isp3', interface: 'if1', address: '203.0.113.9/29', gateway: '203.0.113.14' },
  ], { lan: ['lan0'] });
  const rules = lines(plan(shared, facts(BASE + more))).rules.filter((r) => /^from \d/.test(r));
  assert.ok(!rules.some((r) => r.includes('198.51.100.3')), `ambiguous on a shared interface: ${rules.join('; ')}`);
  assert.equal(rules.filter((r) => r.startsWith('from 203.0.113.9/32')).length, 1, 'isp3\'s own address, once');
});

test('static uplink whose address is missing: no-address, only the oif rule and no routes needing the address', () => {
  const p = plan(twoUplinks(), facts(BASE.replace('addr if1 198.51.100.2/24\n', '') + DHCP_UP));
  const isp1 = status(p, 'isp1');
  assert.equal(isp1.state, 'no-address');
  const l = lines(p);
  assert.ok(!l.rules.some((r) => r.includes('198.51.100.2')));
  assert.ok(l.rules.includes('from all oif if1 lookup 1001 priority 10110 protocol 117'));
  assert.ok(!l.routes.some((r) => r.includes('dev if1')));
  assert.deepEqual(l.nexthops.map((n) => n.split(' ').slice(0, 4).join(' ')), ['id 1000 group 1002,3', 'id 1002 via 192.0.2.1']);
});

test('balance uses every usable uplink by weight, failover the first usable in config order', () => {
  const snap = facts(BASE + DHCP_UP);
  assert.match(lines(plan(twoUplinks(), snap)).nexthops[0]!, /^id 1000 group 1001,1\/1002,3 /);
  const failover = plan(twoUplinks({ default: 'failover' }), snap);
  assert.match(lines(failover).nexthops[0]!, /^id 1000 group 1001,1 /);
  assert.deepEqual(failover.uplinks.map((u) => u.inDefault), [true, false]);
  // Both nexthops exist, so a failover only replaces the group.
  assert.equal(failover.desired.nexthops.length, 3);
  const isp1Down = plan(twoUplinks({ default: 'failover' }), facts(BASE.replace('link if1 up lower_up', 'link if1 up') + DHCP_UP));
  assert.match(lines(isp1Down).nexthops[0]!, /^id 1000 group 1002,3 /);
});

test('tiers: the lowest tier with a usable uplink carries the default', () => {
  const config = testConfig([
    { name: 'backup', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', tier: 2 },
    { name: 'main1', interface: 'vlan102', tier: 1 },
    { name: 'main2', interface: 'vlan101', tier: 1, weight: 2 },
  ]);
  const both = BASE + DHCP_UP + 'addr vlan101 203.0.113.7/24 dynamic\nroute table main default via 203.0.113.1 dev vlan101 proto dhcp metric 30\n';
  assert.match(lines(plan(config, facts(both))).nexthops[0]!, /^id 1000 group 1002,1\/1003,2 /);
  const down = plan(config, facts(both, { health: { main1: 'down', main2: 'down' } }));
  assert.match(lines(down).nexthops[0]!, /^id 1000 group 1001,1 /);
  assert.deepEqual(down.uplinks.map((u) => [u.name, u.state, u.inDefault]), [
    ['backup', 'ready', true], ['main1', 'unhealthy', false], ['main2', 'unhealthy', false],
  ]);
});

test('no usable uplink: no group and no default in the balance table, the fixed rules stay', () => {
  const p = plan(twoUplinks(), facts(BASE.replace('link if1 up lower_up', 'link if1 up')));
  const l = lines(p);
  assert.deepEqual(l.nexthops, []);
  assert.ok(!l.routes.some((r) => r.includes('table 1000')));
  assert.ok(l.rules.includes('from all lookup 1000 priority 10300 protocol 117'));
});

test('link down: no carrier keeps the table, administratively down drops every route through the device', () => {
  const noCarrier = plan(twoUplinks(), facts(BASE.replace('link if1 up lower_up', 'link if1 up') + DHCP_UP));
  assert.equal(status(noCarrier, 'isp1').state, 'link-down');
  assert.equal(status(noCarrier, 'isp1').reason, 'no carrier');
  assert.ok(lines(noCarrier).routes.includes('default via 198.51.100.1 dev if1 table 1001 proto 117'));
  assert.ok(lines(noCarrier).rules.includes('from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117'));
  assert.ok(!lines(noCarrier).nexthops.some((n) => n.startsWith('id 1001')));

  const adminDown = plan(twoUplinks(), facts(BASE.replace('link if1 up lower_up', 'link if1 down') + DHCP_UP));
  assert.equal(status(adminDown, 'isp1').state, 'link-down');
  assert.ok(!lines(adminDown).routes.some((r) => r.includes('dev if1')));
  assert.ok(lines(adminDown).rules.includes('from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117'));
});

test('missing interface: waiting, oif rule kept, LAN interface missing is a warning', () => {
  const p = plan(twoUplinks({ lan: ['lan0', 'lan9'] }), facts(BASE.replace('link vlan102 up lower_up kind vlan\n', '')));
  assert.equal(status(p, 'isp2').state, 'waiting');
  assert.equal(status(p, 'isp2').reason, 'interface vlan102 does not exist');
  assert.ok(lines(p).rules.includes('from all oif vlan102 lookup 1002 priority 10110 protocol 117'));
  assert.deepEqual(p.warnings, ['LAN interface lan9 does not exist']);
});

test('health down leaves only the default; degraded keeps, reduces or removes by onDegraded', () => {
  const snap = BASE + DHCP_UP;
  const down = plan(twoUplinks(), facts(snap, { health: { isp2: 'down' } }));
  const isp2 = status(down, 'isp2');
  assert.equal(isp2.state, 'unhealthy');
  assert.equal(isp2.health, 'down');
  assert.ok(lines(down).routes.includes('default via 192.0.2.1 dev vlan102 table 1002 proto 117'));
  assert.ok(lines(down).rules.includes('from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117'));
  // isp2's nexthop stays, out of the group: another program's route on it (nhid 1002) survives the failover.
  assert.deepEqual(lines(down).nexthops.map((n) => n.split(' ').slice(0, 3).join(' ')), ['id 1000 group', 'id 1001 via', 'id 1002 via']);
  assert.match(lines(down).nexthops[0]!, /group 1001,1 /);
  // Without a gateway (or address, or link) there is no nexthop to keep.
  const gone = plan(twoUplinks(), facts(BASE, { health: { isp2: 'down' } }));
  assert.notEqual(status(gone, 'isp2').state, 'unhealthy');
  assert.deepEqual(lines(gone).nexthops.map((n) => n.split(' ').slice(0, 3).join(' ')), ['id 1000 group', 'id 1001 via']);

  const degraded = (onDegraded: 'keep' | 'reduce' | 'remove'): Plan => plan(testConfig([
    { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
    { name: 'isp2', interface: 'vlan102', weight: 7, onDegraded },
  ]), facts(snap, { health: { isp2: 'degraded' } }));
  assert.match(lines(degraded('keep')).nexthops[0]!, /group 1001,1\/1002,7 /);
  assert.match(lines(degraded('reduce')).nexthops[0]!, /group 1001,1\/1002,3 /);
  assert.equal(status(degraded('reduce'), 'isp2').weight, 3);
  const removed = degraded('remove');
  assert.match(lines(removed).nexthops[0]!, /group 1001,1 /);
  assert.equal(status(removed, 'isp2').inDefault, false);
  assert.equal(status(removed, 'isp2').state, 'ready');
});

test('every uplink table holds the LAN networks, the other uplinks networks and 127/8', () => {
  const config = testConfig([
    { name: 'a', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
    { name: 'b', interface: 'vlan101' },
    { name: 'c', interface: 'vlan102' },
  ], { lan: ['lan0', 'lan1'] });
  const p = plan(config, facts(BASE + DHCP_UP + `
link lan1 up lower_up
addr lan1 10.1.0.1/16
addr lan1 10.2.0.1/24 secondary
addr vlan101 203.0.113.7/24 dynamic
`));
  for (const [table, own] of [[1001, 'if1'], [1002, 'vlan101'], [1003, 'vlan102']] as const) {
    const inTable = lines(p).routes.filter((r) => r.includes(`table ${table} `)).map((r) => r.replace(/ table \d+ proto 117$/, ''));
    const others = [['198.51.100.0/24', 'if1'], ['203.0.113.0/24', 'vlan101'], ['192.0.2.0/24', 'vlan102']].filter(([, dev]) => dev !== own);
    for (const [net, dev] of others) assert.ok(inTable.includes(`${net} dev ${dev} scope link`), `table ${table} lacks ${net}`);
    for (const lan of ['10.0.0.0/24 dev lan0', '10.1.0.0/16 dev lan1', '10.2.0.0/24 dev lan1', '127.0.0.0/8 dev lo']) {
      assert.ok(inTable.includes(`${lan} scope link`), `table ${table} lacks ${lan}`);
    }
  }
  // b has an address but no gateway: its table has no default, and b is not in the group.
  assert.equal(status(p, 'b').state, 'no-gateway');
  assert.match(lines(p).nexthops[0]!, /group 1001,1\/1003,1 /);
});

test('foreign objects in the band, the tables or the nexthop ids are reported as collisions', () => {
  const p = plan(twoUplinks(), facts(BASE + DHCP_UP + `
rule 10150 from all lookup 77
rule 9000 from all lookup 78
route table 1001 203.0.113.0/24 dev if1 proto static
nexthop id 1002 via 192.0.2.1 dev vlan102 proto static
`));
  assert.equal(p.warnings.length, 4);
  assert.match(p.warnings[0]!, /^admin rule 'from all lookup 78 priority 9000 protocol unspec': comes before flow pinning and split access/);
  assert.match(p.warnings[1]!, /^admin rule 'from all lookup 77 priority 10150 protocol unspec': .*shadows the main table/);
  assert.match(p.warnings[2]!, /^collision: foreign route '203\.0\.113\.0\/24 dev if1 scope link table 1001 proto static'/);
  assert.match(p.warnings[3]!, /^collision: foreign nexthop 'id 1002 /);
});

test('a static uplink without a configured gateway takes it from the kernel routes', () => {
  const config = testConfig([{ name: 'isp1', interface: 'if1', address: '198.51.100.2/24' }]);
  const p = plan(config, facts(BASE + 'route table main default via 198.51.100.254 dev if1 proto static\n'));
  assert.equal(status(p, 'isp1').gateway, '198.51.100.254');
  assert.equal(status(p, 'isp1').gatewaySource, 'route');
  assert.equal(status(plan(config, facts(BASE)), 'isp1').state, 'no-gateway');
});

test('when every usable uplink is degraded with onDegraded remove, they keep the default and a warning says so', () => {
  const config = testConfig([
    { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', onDegraded: 'remove' },
    { name: 'isp2', interface: 'vlan102', onDegraded: 'remove' },
  ]);
  const p = plan(config, facts(BASE + DHCP_UP, { health: { isp1: 'degraded', isp2: 'degraded' } }));
  assert.match(lines(p).nexthops[0]!, /group 1001,1\/1002,1 /);
  assert.deepEqual(p.warnings, ['every usable uplink is degraded: keeping isp1, isp2 in the default anyway']);
});

test('pinning: one fwmark rule per uplink at rulePriority + 50, before the from rules; none without pinning', () => {
  const pinned = plan(twoUplinks({ pinning: { enabled: true, markMask: 0x00ff0000 } }), facts(BASE + DHCP_UP));
  const rules = lines(pinned).rules;
  assert.deepEqual(rules.slice(0, 3), [
    'from all fwmark 0x10000/0xff0000 lookup 1001 priority 10050 protocol 117',
    'from all fwmark 0x20000/0xff0000 lookup 1002 priority 10050 protocol 117',
    'from 192.0.2.7/32 lookup 1002 priority 10100 protocol 117',
  ]);
  // Config only: an uplink without its address or link keeps its rule (its pinned flows wait for it).
  const gone = plan(twoUplinks({ pinning: { enabled: true, markMask: 0x0000f000 } }), facts(BASE));
  assert.ok(lines(gone).rules.includes('from all fwmark 0x2000/0xf000 lookup 1002 priority 10050 protocol 117'));
  const off = plan(twoUplinks({ pinning: { enabled: false, markMask: 0x00ff0000 } }), facts(BASE + DHCP_UP));
  assert.ok(lines(off).rules.every((r) => !r.includes('fwmark')));
});

test('every uplink judged down while its link is up: last resort keeps them in the default, loudly', () => {
  const snap = BASE + DHCP_UP;
  const p = plan(twoUplinks(), facts(snap, { health: { isp1: 'down', isp2: 'down' } }));
  assert.match(lines(p).nexthops[0]!, /^id 1000 group 1001,1\/1002,\d /);
  assert.ok(lines(p).routes.some((r) => r.startsWith('default nhid 1000 table 1000')));
  for (const name of ['isp1', 'isp2']) {
    const s = status(p, name);
    assert.equal(s.state, 'unhealthy');
    assert.equal(s.inDefault, true);
    assert.equal(s.lastResort, true);
    assert.match(s.reason, /^LAST RESORT/);
  }
  assert.ok(p.warnings.some((w) => /^LAST RESORT: every uplink is judged down .* keeps isp1, isp2/.test(w)), p.warnings.join('\n'));

  // One uplink healthy: no last resort, the judged-down one stays out.
  const one = plan(twoUplinks(), facts(snap, { health: { isp1: 'down' } }));
  assert.equal(status(one, 'isp1').inDefault, false);
  assert.equal(status(one, 'isp1').lastResort, undefined);
  assert.ok(!one.warnings.some((w) => w.includes('LAST RESORT')));
});

test('plan warns about weak monitoring, with the gateway a DHCP uplink got at run time', () => {
  const config = twoUplinks();
  config.uplinks[1].monitor = { ...MONITOR_DEFAULTS, targets: ['192.0.2.1'] };
  const p = plan(config, facts(BASE + DHCP_UP));
  assert.ok(p.warnings.includes("uplink isp2: monitor target 192.0.2.1 is the uplink's own gateway: it cannot see past the first hop (it answers while the provider's upstream is dead)"), p.warnings.join('\n'));
  assert.ok(p.warnings.some((w) => w.startsWith('uplink isp2: monitor has only one target (192.0.2.1)')));
});

test('a nexthop the kernel refused last cycle keeps its uplink out of the group (the others balance) and stays planned; accepted, it joins', () => {
  const config = twoUplinks();
  const first = plan(config, facts(BASE + DHCP_UP));
  const isp1 = first.desired.nexthops.find((n) => n.id === 1001)!;
  const refused = new Set([objectIdentity({ kind: 'nexthop', nexthop: isp1 })]);
  const p = plan(config, { ...facts(BASE + DHCP_UP), refused });
  assert.ok(lines(p).nexthops.some((l) => l.startsWith('id 1001 via 198.51.100.1 dev if1')), 'the refused nexthop is still planned (retried)');
  assert.match(lines(p).nexthops.find((l) => l.startsWith('id 1000 '))!, /group 1002,3 /);
  assert.ok(lines(p).routes.includes('default nhid 1000 table 1000 proto 117'));
  assert.equal(status(p, 'isp1').inDefault, false);
  assert.equal(status(p, 'isp2').inDefault, true);
  // The group itself refused as planned: its route waits for it; a changed group is tried again with its route.
  const group = p.desired.nexthops.find((n) => n.id === 1000)!;
  const both = new Set([...refused, objectIdentity({ kind: 'nexthop', nexthop: group })]);
  assert.ok(!lines(plan(config, { ...facts(BASE + DHCP_UP), refused: both })).routes.some((l) => l.includes('nhid 1000')));
  assert.ok(lines(plan(config, { ...facts(BASE + DHCP_UP), refused: new Set([objectIdentity({ kind: 'nexthop', nexthop: group })]) })).routes.includes('default nhid 1000 table 1000 proto 117'));
  // Every member refused: no group, no route naming it.
  const isp2 = first.desired.nexthops.find((n) => n.id === 1002)!;
  const none = plan(config, { ...facts(BASE + DHCP_UP), refused: new Set([...refused, objectIdentity({ kind: 'nexthop', nexthop: isp2 })]) });
  assert.ok(!none.desired.nexthops.some((n) => n.id === 1000));
  assert.ok(!lines(none).routes.some((l) => l.includes('nhid')));
});

test('a foreign nexthop holding an uplink\'s id: the group never names it, the uplink says it is blocked, the collision is reported', () => {
  const p = plan(twoUplinks(), facts(BASE + DHCP_UP + 'nexthop id 1001 via 198.51.100.50 dev if1 proto static\n'));
  assert.match(lines(p).nexthops.find((l) => l.startsWith('id 1000 '))!, /group 1002,3 /);
  assert.equal(status(p, 'isp1').inDefault, false);
  assert.deepEqual(p.collisions.map((c) => c.uplink), ['isp1']);
  assert.match(status(p, 'isp1').collisions![0]!, /foreign nexthop 'id 1001 via 198\.51\.100\.50/);
  assert.match(status(p, 'isp1').reason, /blocked by collision/);
  // The group's own id taken: no group and no route naming the foreign one.
  const q = plan(twoUplinks(), facts(BASE + DHCP_UP + 'nexthop id 1000 via 198.51.100.50 dev if1 proto static\n'));
  assert.ok(!lines(q).routes.some((l) => l.includes('nhid 1000')));
  assert.deepEqual(q.collisions.map((c) => c.uplink), [undefined]);
  // Nothing foreign: no collisions.
  assert.deepEqual(plan(twoUplinks(), facts(BASE + DHCP_UP)).collisions, []);
});

test('a foreign route in an uplink\'s slot blocks that uplink; one elsewhere in its table is only a warning', () => {
  const p = plan(twoUplinks(), facts(BASE + DHCP_UP + 'route table 1001 default via 198.51.100.50 dev if1 proto static\n'));
  assert.deepEqual(p.collisions.map((c) => c.uplink), ['isp1']);
  assert.match(status(p, 'isp1').collisions![0]!, /foreign route 'default via 198\.51\.100\.50 dev if1 table 1001 proto static' holds the place of uplinkd's 'default via 198\.51\.100\.1/);
  assert.equal(status(p, 'isp2').collisions, undefined);
  const q = plan(twoUplinks(), facts(BASE + DHCP_UP + 'route table 1001 203.0.113.0/24 dev if1 proto static\n'));
  assert.deepEqual(q.collisions, []);
  assert.ok(q.warnings.some((w) => /^collision: foreign route '203\.0\.113\.0\/24/.test(w)));
});

test('a foreign rule at uplinkd\'s priority: the kernel\'s order (the dump\'s) decides whether it takes uplinkd\'s packets', () => {
  const ours = 'rule 10100 from 198.51.100.2 lookup 1001 proto 117\n';
  const foreign = 'rule 10100 from 198.51.100.2 lookup 1002 proto static\n';
  const table1002 = 'route table 1002 default via 192.0.2.1 dev vlan102 proto 117\n';
  const before = plan(twoUplinks(), facts(BASE + DHCP_UP + table1002 + foreign + ours));
  assert.deepEqual(before.collisions.map((c) => c.uplink), ['isp1']);
  assert.match(before.collisions[0]!.text, /foreign rule 'from 198\.51\.100\.2\/32 lookup 1002 .*' comes before uplinkd's rule for split access/);
  const admin = before.warnings.find((w) => w.startsWith('admin rule'))!;
  assert.match(admin, /comes before flow pinning and split access/);
  assert.doesNotMatch(admin, /routed by uplinkd's earlier rules first/);
  // Ours inserted first: the kernel consults it first, so the foreign rule takes nothing of it.
  const after = plan(twoUplinks(), facts(BASE + DHCP_UP + table1002 + ours + foreign));
  assert.deepEqual(after.collisions, []);
});

test('a static gateway that is one of the router\'s addresses: no-gateway with the cause named, no nexthop or default for it', () => {
  const config = testConfig([
    { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '10.0.0.1' },
    { name: 'isp2', interface: 'vlan102', weight: 3 },
  ], { lan: ['lan0'] });
  const p = plan(config, facts(BASE + DHCP_UP));
  const isp1 = status(p, 'isp1');
  assert.equal(isp1.state, 'no-gateway');
  assert.equal(isp1.reason, 'gateway 10.0.0.1 is an address of this router (on lan0): a route via it never leaves the router (uplinkd check reports it)');
  const l = lines(p);
  assert.ok(!l.nexthops.some((n) => n.includes('10.0.0.1')), l.nexthops.join('\n'));
  assert.ok(!l.routes.some((r) => r.startsWith('default via 10.0.0.1')), l.routes.join('\n'));
  assert.equal(status(p, 'isp2').state, 'ready');
});
