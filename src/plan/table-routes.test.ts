import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRoute } from '../model/text';
import type { Route } from '../model/types';
import { tableRoutes, type TableInputs } from './table-routes';

const inputs = (): TableInputs => ({
  protocol: 117,
  uplinks: [
    { table: 1001, dev: 'if1', routable: true, address: '198.51.100.2', network: '198.51.100.0/24', gateway: '198.51.100.1' },
    { table: 1002, dev: 'ppp0', routable: true, address: '203.0.113.9', deviceDefault: true },
  ],
  lan: [{ dst: '192.168.1.0/24', dev: 'lan0' }],
  balanceTable: 1000,
});

const text = (routes: readonly Route[]): string[] => routes.map(formatRoute);

test('tableRoutes: split access per uplink table and the balanced default, sorted, first of a key kept', () => {
  assert.deepEqual(text(tableRoutes(inputs())), [
    'default nhid 1000 table 1000 proto 117',
    'default via 198.51.100.1 dev if1 table 1001 proto 117',
    '127.0.0.0/8 dev lo scope link table 1001 proto 117',
    '192.168.1.0/24 dev lan0 scope link table 1001 proto 117',
    '198.51.100.0/24 dev if1 src 198.51.100.2 scope link table 1001 proto 117',
    'default dev ppp0 scope link table 1002 proto 117',
    '127.0.0.0/8 dev lo scope link table 1002 proto 117',
    '192.168.1.0/24 dev lan0 scope link table 1002 proto 117',
    '198.51.100.0/24 dev if1 scope link table 1002 proto 117',
  ]);
  // A LAN network equal to the uplink's own: the uplink's link route (added first) stays.
  const same = inputs();
  same.lan = [{ dst: '198.51.100.0/24', dev: 'lan0' }];
  assert.ok(text(tableRoutes(same)).includes('198.51.100.0/24 dev if1 src 198.51.100.2 scope link table 1001 proto 117'));
});

test('tableRoutes: equal inputs return the same frozen array; it cannot be changed by a caller', () => {
  const a = tableRoutes(inputs());
  const b = tableRoutes(inputs()); // equal, not the same objects
  assert.equal(b, a);
  assert.ok(Object.isFrozen(a) && a.every((r) => Object.isFrozen(r)));
  assert.throws(() => (a as unknown as unknown[]).push(a[0]), TypeError);
  assert.throws(() => { (a[0] as { table: number }).table = 7; }, TypeError);
});

test('tableRoutes: any changed input gives a fresh result built from it, never the remembered one', () => {
  const changes: [string, (i: TableInputs) => void][] = [
    ['protocol', (i) => { i.protocol = 118; }],
    ['an uplink table', (i) => { i.uplinks[0]!.table = 1003; }],
    ['an interface', (i) => { i.uplinks[0]!.dev = 'if9'; }],
    ['an interface going down', (i) => { i.uplinks[0]!.routable = false; }],
    ['an address', (i) => { i.uplinks[0]!.address = '198.51.100.3'; }],
    ['a network', (i) => { i.uplinks[0]!.network = '198.51.100.0/25'; }],
    ['a gateway', (i) => { i.uplinks[0]!.gateway = '198.51.100.254'; }],
    ['onlink', (i) => { i.uplinks[0]!.onlink = true; }],
    ['a device default', (i) => { i.uplinks[1]!.deviceDefault = false; }],
    ['an uplink more', (i) => { i.uplinks.push({ table: 1003, dev: 'if3', routable: true, address: '10.0.0.2', network: '10.0.0.0/8', gateway: '10.0.0.1' }); }],
    ['a LAN network more', (i) => { i.lan.push({ dst: '10.9.0.0/16', dev: 'wg0' }); }],
    ['a LAN gateway', (i) => { i.lan[0]!.gateway = '192.168.1.254'; }],
    ['no balance group', (i) => { delete i.balanceTable; }],
    ['another balance table', (i) => { i.balanceTable = 900; }],
  ];
  for (const [what, change] of changes) {
    const base = tableRoutes(inputs());
    const changed = inputs();
    change(changed);
    const got = tableRoutes(changed);
    assert.notEqual(got, base, what);
    assert.notDeepEqual(text(got), text(base), `${what}: the result shows the change`);
    tableRoutes(inputs()); // forget `changed`
    assert.deepEqual(text(tableRoutes(changed)), text(got), `${what}: as computed afresh`);
  }
});
