// Planner snapshots for each kind of uplink (issue 8): point-to-point (learned from pppd, static),
// on-link gateways outside the prefix (static, learned from the routes, from a lease), and
// several uplinks in one subnet. Each expectation is the whole desired state as `ip` lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lease } from '../model/facts';
import { plan, type Plan, type UplinkStatus } from './planner';
import { formatNexthop, formatRoute, parseSnapshot } from '../model/text';
import { testConfig, type TestUplink } from '../../test/support/test-config';
import { connectedNetwork, gatewayIsConnected, learnedDefault } from './uplink-kinds';

function run(uplinks: TestUplink[], snapshot: string, leases: Lease[] = []): Plan {
  return plan(testConfig(uplinks), { kernel: parseSnapshot(snapshot), leases, health: {} });
}

/** Routes and nexthops as `ip` lines (the rules are the same for every kind and tested in planner.test.ts). */
function lines(p: Plan): { routes: string[]; nexthops: string[] } {
  return { routes: p.desired.routes.map(formatRoute), nexthops: p.desired.nexthops.map(formatNexthop) };
}

function status(p: Plan, name: string): UplinkStatus {
  const u = p.uplinks.find((s) => s.name === name);
  assert.ok(u, `no status for ${name}`);
  return u;
}

const GROUP = 'id 1000 group 1001,1/1002,1 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117';

test('two pppd sessions with the same peer: device-only defaults, each table routes the peer through its own link', () => {
  // pppd installs `default dev ppp0` for the first session; the second could not (a default existed).
  const p = run([{ name: 'flets1', interface: 'ppp0' }, { name: 'flets2', interface: 'ppp1' }], `
link lo up lower_up
link ppp0 up lower_up pointopoint
link ppp1 up lower_up pointopoint
addr ppp0 100.64.7.2 peer 10.64.0.1/32
addr ppp1 100.64.8.2 peer 10.64.0.1/32
route table main default dev ppp0 proto boot scope link
route table main 10.64.0.1/32 dev ppp0 proto kernel scope link src 100.64.7.2
route table main 10.64.0.1/32 dev ppp1 proto kernel scope link src 100.64.8.2
`);
  assert.deepEqual(lines(p), {
    routes: [
      'default dev ppp0 scope link table 1001 proto 117',
      '10.64.0.1/32 dev ppp0 src 100.64.7.2 scope link table 1001 proto 117',
      '127.0.0.0/8 dev lo scope link table 1001 proto 117',
      'default dev ppp1 scope link table 1002 proto 117',
      '10.64.0.1/32 dev ppp1 src 100.64.8.2 scope link table 1002 proto 117',
      '127.0.0.0/8 dev lo scope link table 1002 proto 117',
      'default nhid 1000 table 1000 proto 117',
    ].sort(byTable),
    nexthops: [GROUP, 'id 1001 dev ppp0 proto 117', 'id 1002 dev ppp1 proto 117'],
  });
  assert.deepEqual([status(p, 'flets1'), status(p, 'flets2')].map((s) => [s.state, s.peer, s.network, s.deviceDefault, s.gatewaySource]), [
    ['ready', '10.64.0.1', '10.64.0.1/32', true, 'route'],
    ['ready', '10.64.0.1', '10.64.0.1/32', true, 'link'],
  ]);
  assert.deepEqual(p.warnings, []);
});

test('a static point-to-point uplink: default dev IF without a gateway, via the peer onlink with one', () => {
  const snap = `
link lo up lower_up
link tun0 up lower_up pointopoint
link ppp0 up lower_up pointopoint
addr tun0 100.64.7.2 peer 10.64.0.1/32
addr ppp0 100.64.8.2 peer 10.64.0.1/32
`;
  const p = run([
    { name: 'a', interface: 'tun0', address: '100.64.7.2/32', peer: '10.64.0.1' },
    { name: 'b', interface: 'ppp0', address: '100.64.8.2/32', peer: '10.64.0.1', gateway: '10.64.0.1' },
  ], snap);
  assert.deepEqual(lines(p).routes.filter((r) => r.startsWith('default ') && !r.includes('nhid')), [
    'default dev tun0 scope link table 1001 proto 117',
    'default via 10.64.0.1 dev ppp0 onlink table 1002 proto 117',
  ]);
  assert.deepEqual(lines(p).nexthops, [GROUP, 'id 1001 dev tun0 proto 117', 'id 1002 via 10.64.0.1 dev ppp0 onlink proto 117']);
});

test('on-link gateway outside the prefix: static /32, learned from a client\'s host route, from a lease', () => {
  const snap = `
link lo up lower_up
link ens5 up lower_up
link ens6 up lower_up
link ens7 up lower_up
addr ens5 203.0.113.2/32
addr ens6 198.51.100.9/32 dynamic
route table main 172.31.1.1 dev ens6 proto dhcp scope link
route table main default via 172.31.1.1 dev ens6 proto dhcp metric 100
addr ens7 192.0.2.77/32 dynamic
`;
  const lease: Lease = { interface: 'ens7', client: 'dhclient', file: '/var/lib/dhcp/dhclient.ens7.leases', address: '192.0.2.77', gateway: '10.0.0.1' };
  const p = run([
    { name: 'cloud', interface: 'ens5', address: '203.0.113.2/32', gateway: '172.31.1.1' },
    { name: 'learned', interface: 'ens6' },
    { name: 'leased', interface: 'ens7' },
  ], snap, [lease]);
  assert.deepEqual(lines(p).routes.filter((r) => !r.includes('127.0.0.0/8')), [
    'default nhid 1000 table 1000 proto 117',
    'default via 172.31.1.1 dev ens5 onlink table 1001 proto 117',
    'default via 172.31.1.1 dev ens6 onlink table 1002 proto 117',
    // The DHCP client's host route to its gateway came with ens6's link: in ens6's table, not ens5's (same address).
    '172.31.1.1/32 dev ens6 scope link table 1002 proto 117',
    'default via 10.0.0.1 dev ens7 onlink table 1003 proto 117',
  ]);
  assert.deepEqual(lines(p).nexthops, [
    'id 1000 group 1001,1/1002,1/1003,1 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117',
    'id 1001 via 172.31.1.1 dev ens5 onlink proto 117',
    'id 1002 via 172.31.1.1 dev ens6 onlink proto 117',
    'id 1003 via 10.0.0.1 dev ens7 onlink proto 117',
  ]);
  assert.deepEqual(p.uplinks.map((u) => [u.name, u.state, u.network, u.onlink, u.gatewaySource, u.inDefault]), [
    ['cloud', 'ready', undefined, true, 'config', true],
    ['learned', 'ready', undefined, true, 'route', true],
    ['leased', 'ready', undefined, true, 'lease', true],
  ]);
});

test('two uplinks in one subnet with the same gateway: each table and nexthop uses its own interface', () => {
  const p = run([
    { name: 'home1', interface: 'eth1', address: '192.168.1.2/24', gateway: '192.168.1.1' },
    { name: 'home2', interface: 'eth2', address: '192.168.1.3/24', gateway: '192.168.1.1' },
  ], `
link lo up lower_up
link eth1 up lower_up
link eth2 up lower_up
addr eth1 192.168.1.2/24
addr eth2 192.168.1.3/24
`);
  assert.deepEqual(lines(p), {
    routes: [
      'default nhid 1000 table 1000 proto 117',
      'default via 192.168.1.1 dev eth1 table 1001 proto 117',
      '127.0.0.0/8 dev lo scope link table 1001 proto 117',
      '192.168.1.0/24 dev eth1 src 192.168.1.2 scope link table 1001 proto 117',
      'default via 192.168.1.1 dev eth2 table 1002 proto 117',
      '127.0.0.0/8 dev lo scope link table 1002 proto 117',
      '192.168.1.0/24 dev eth2 src 192.168.1.3 scope link table 1002 proto 117',
    ],
    nexthops: [GROUP, 'id 1001 via 192.168.1.1 dev eth1 proto 117', 'id 1002 via 192.168.1.1 dev eth2 proto 117'],
  });
  assert.ok(p.uplinks.every((u) => u.state === 'ready' && u.inDefault));
});

test('kinds: connected networks and which gateways need onlink', () => {
  assert.equal(connectedNetwork({ ip: '192.0.2.7', prefixlen: 24 }), '192.0.2.0/24');
  assert.equal(connectedNetwork({ ip: '100.64.7.2', prefixlen: 32, peer: '10.64.0.1' }), '10.64.0.1/32');
  assert.equal(connectedNetwork({ ip: '203.0.113.2', prefixlen: 32 }), undefined);
  assert.equal(gatewayIsConnected({ ip: '192.0.2.7', prefixlen: 24 }, '192.0.2.1'), true);
  assert.equal(gatewayIsConnected({ ip: '192.0.2.7', prefixlen: 24 }, '10.0.0.1'), false);
  assert.equal(gatewayIsConnected({ ip: '100.64.7.2', prefixlen: 32, peer: '10.64.0.1' }, '10.64.0.1'), false);
  // In the prefix first, then on-link, then device-only; the own address is never a gateway.
  const a = { ip: '192.0.2.7', prefixlen: 24 };
  assert.deepEqual(learnedDefault(a, [{ metric: 0, table: 254 }, { gateway: '10.0.0.1', metric: 1, table: 254 }, { gateway: '192.0.2.1', metric: 5, table: 254 }]),
    { gateway: '192.0.2.1', onlink: false });
  assert.deepEqual(learnedDefault(a, [{ metric: 0, table: 254 }, { gateway: '10.0.0.1', metric: 1, table: 254 }]), { gateway: '10.0.0.1', onlink: true });
  assert.deepEqual(learnedDefault(a, [{ metric: 0, table: 254 }]), { onlink: false });
  assert.equal(learnedDefault(a, [{ gateway: '192.0.2.7', metric: 0, table: 254 }]), undefined);
});

/** Routes as planner output orders them: by table, then prefix. */
function byTable(a: string, b: string): number {
  const t = (s: string): number => Number(/ table (\d+)/.exec(s)![1]);
  return t(a) - t(b);
}
