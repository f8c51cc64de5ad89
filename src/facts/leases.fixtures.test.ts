// The readers against real lease files (test/fixtures/leases, made by scripts/lease-fixtures.sh):
// every client, with option 3 only, 121 only, 121 and 3 (RFC 3442: 121 wins) and 249 only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { DhcpClient, Lease } from '../model/facts';
import { parseLeaseFile } from './leases';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/leases');
const NAMES = new Map([[1, 'lo'], [2, 'wan0']]);
const ROUTES = [
  { dst: '0.0.0.0/0', gateway: '192.0.2.254' },
  { dst: '198.18.0.0/15', gateway: '192.0.2.253' },
  { dst: '203.0.113.7/32', gateway: '192.0.2.253' },
];

function fixture(client: DhcpClient, mode: string): Lease {
  const rel = { dhclient: `dhclient-${mode}.leases`, dhcpcd: `dhcpcd-${mode}/wan0.lease`, networkd: `networkd-${mode}/2`, udhcpc: `udhcpc-${mode}.lease` }[client];
  const file = path.join(FIXTURES, rel);
  const leases = parseLeaseFile(file, readFileSync(file), statSync(file).mtimeMs, NAMES);
  assert.equal(leases.length, 1, JSON.stringify(leases));
  const [lease] = leases;
  assert.equal(lease.client, client);
  assert.equal(lease.interface, 'wan0');
  assert.match(lease.address ?? '', /^192\.0\.2\.(1[0-4]\d|150)$/);
  return lease;
}

for (const client of ['dhclient', 'dhcpcd', 'networkd', 'udhcpc'] as const) {
  test(`${client}: option 3 only gives the router as gateway and no classless routes`, () => {
    const lease = fixture(client, '3');
    assert.equal(lease.gateway, '192.0.2.1');
    assert.equal(lease.router, '192.0.2.1');
    assert.equal(lease.classlessRoutes, undefined);
  });

  test(`${client}: option 121 only gives its 0.0.0.0/0 entry as gateway and every classless route`, () => {
    const lease = fixture(client, '121');
    assert.equal(lease.gateway, '192.0.2.254');
    assert.equal(lease.router, undefined);
    assert.equal(lease.classlessOption, 121);
    assert.deepEqual(lease.classlessRoutes, ROUTES);
  });

  test(`${client}: with 121 and 3 the router option is ignored (RFC 3442)`, () => {
    const lease = fixture(client, '121-3');
    assert.equal(lease.router, '192.0.2.1');
    assert.equal(lease.gateway, '192.0.2.254');
    assert.equal(lease.classlessOption, 121);
    assert.deepEqual(lease.classlessRoutes, ROUTES);
  });

  test(`${client}: Microsoft's option 249 alone is read like 121`, () => {
    const lease = fixture(client, '249');
    assert.equal(lease.router, undefined);
    assert.equal(lease.gateway, '192.0.2.254');
    assert.equal(lease.classlessOption, 249);
    assert.deepEqual(lease.classlessRoutes, ROUTES);
  });
}
