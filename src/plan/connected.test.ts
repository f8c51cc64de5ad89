import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from './planner';
import { formatRoute, parseSnapshot } from '../model/text';
import { testConfig } from '../../test/support/test-config';

const WORLD = `
link lo up lower_up
link lan0 up lower_up
link if1 up lower_up
link if2 up lower_up
link docker0 up lower_up kind bridge
link br-3f2a up lower_up kind bridge
link tun0 up lower_up pointopoint
link wg9 down
addr lan0 192.168.10.1/24
addr if1 198.51.100.2/24
addr if2 203.0.113.2/24
addr docker0 172.17.0.1/16
addr br-3f2a 172.18.0.1/16
addr tun0 10.8.0.1 peer 10.8.0.2/32
route table main 192.168.10.0/24 dev lan0 proto kernel scope link src 192.168.10.1
route table main 198.51.100.0/24 dev if1 proto kernel scope link src 198.51.100.2
route table main 203.0.113.0/24 dev if2 proto kernel scope link src 203.0.113.2
route table main 172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1
route table main 10.8.0.2 dev tun0 proto kernel scope link src 10.8.0.1
route table main 10.8.0.0/24 via 10.8.0.2 dev tun0 proto static
route table main 10.20.0.0/16 via 192.168.10.254 dev lan0 proto static metric 50
route table main 10.20.0.0/16 via 192.168.10.253 dev lan0 proto static metric 10
route table main 10.50.0.0/16 via 198.51.100.1 dev if1 proto dhcp
route table main default via 198.51.100.1 dev if1 proto dhcp
route table 77 10.77.0.0/16 dev lan0 proto static
`;

const config = (lan: string[] = []) => testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
  { name: 'isp2', interface: 'if2', address: '203.0.113.2/24', gateway: '203.0.113.1' },
], { lan });

const tableOf = (routes: string[], table: number): string[] =>
  routes.filter((r) => r.endsWith(`table ${table} proto 117`)).map((r) => r.replace(/ table \d+ proto 117$/, ''));

test('every network behind a non-uplink interface is in every uplink table, without listing it', () => {
  const p = plan(config(), { kernel: parseSnapshot(WORLD), leases: [], health: {} });
  const routes = p.desired.routes.map(formatRoute);
  for (const table of [1001, 1002]) {
    const t = tableOf(routes, table);
    for (const want of [
      '10.8.0.0/24 via 10.8.0.2 dev tun0', // a VPN's routed network
      '10.8.0.2/32 dev tun0 scope link', // the tunnel's peer
      '10.20.0.0/16 via 192.168.10.253 dev lan0', // behind a router on the LAN: the lowest metric
      '172.17.0.0/16 dev docker0 scope link', // Docker's bridge
      '192.168.10.0/24 dev lan0 scope link',
    ]) assert.ok(t.includes(want), `table ${table} lacks ${want}: ${t.join(' | ')}`);
    // A provider's classless route belongs to its uplink: in isp1's table (a reply from isp1's address, a flow pinned
    // to isp1, takes it), never in another's (from isp2's address it must not leave through if1).
    const classless = t.filter((r) => r.startsWith('10.50.0.0/16'));
    assert.deepEqual(classless, table === 1001 ? ['10.50.0.0/16 via 198.51.100.1 dev if1'] : [], `table ${table}`);
    assert.ok(!t.some((r) => r.startsWith('10.77.0.0/16')), 'only main is copied');
  }
  // br-3f2a has an address but its connected route is missing from main: only `lan:` would add it.
  assert.ok(!routes.some((r) => r.startsWith('172.18.0.0/16')));
  assert.deepEqual(p.warnings, []);
});

test('a full-tunnel VPN\'s halves of the default (redirect-gateway def1) are not copied; its server\'s route stays with its uplink', () => {
  const vpn = `${WORLD}route table main 0.0.0.0/1 via 10.8.0.2 dev tun0 proto static
route table main 128.0.0.0/1 via 10.8.0.2 dev tun0 proto static
route table main 8.8.8.8 via 198.51.100.1 dev if1 proto boot
`;
  const p = plan(config(), { kernel: parseSnapshot(vpn), leases: [], health: {} });
  const routes = p.desired.routes.map(formatRoute);
  assert.ok(!routes.some((r) => /^(0\.0\.0\.0|128\.0\.0\.0)\/1 /.test(r)), routes.join('\n'));
  assert.deepEqual(routes.filter((r) => r.startsWith('8.8.8.8')), ['8.8.8.8/32 via 198.51.100.1 dev if1 table 1001 proto 117']);
  assert.deepEqual(p.warnings, [], 'no overlap warnings either');
});

test('lan: takes globs; a listed name that does not exist is a warning, a glob that matches nothing is not', () => {
  const p = plan(config(['br-*', 'lan9', 'wg*']), { kernel: parseSnapshot(WORLD), leases: [], health: {} });
  const routes = p.desired.routes.map(formatRoute);
  assert.ok(tableOf(routes, 1001).includes('172.18.0.0/16 dev br-3f2a scope link'));
  assert.deepEqual(p.warnings, ['LAN interface lan9 does not exist']);
});

test('a local network overlapping an uplink\'s network is accepted with a warning naming both', () => {
  const p = plan(config(), { kernel: parseSnapshot(`${WORLD}
link lan2 up lower_up
addr lan2 198.51.100.129/25
route table main 198.51.100.128/25 dev lan2 proto kernel scope link src 198.51.100.129
`), leases: [], health: {} });
  assert.deepEqual(p.warnings, [
    "198.51.100.128/25 on lan2 overlaps uplink isp1's network 198.51.100.0/24: in isp1's table the longer prefix wins",
  ]);
  assert.ok(tableOf(p.desired.routes.map(formatRoute), 1002).includes('198.51.100.128/25 dev lan2 scope link'));
});
