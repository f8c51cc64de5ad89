import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import { parseLeaseFile } from '../facts/leases';
import { plan, type UplinkStatus } from './planner';
import { parseSnapshot } from '../model/text';
import { testConfig } from '../../test/support/test-config';

const config = testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
  { name: 'isp2', interface: 'wan0' },
]);

function isp2(address: string, leases: Lease[]): UplinkStatus {
  const kernel = parseSnapshot(`
link lo up lower_up
link if1 up lower_up
link wan0 up lower_up
addr if1 198.51.100.2/24
addr wan0 ${address}/24 dynamic
`);
  const p = plan(config, { kernel, leases, health: {} });
  const s = p.uplinks.find((u) => u.name === 'isp2');
  assert.ok(s);
  return s;
}

const lease = (more: Partial<Lease>): Lease => ({ interface: 'wan0', client: 'dhclient', file: '/l', address: '192.0.2.7', ...more });

test('option 121 only (real dhcpcd lease): the uplink is ready with the classless default as gateway', () => {
  const file = path.resolve(__dirname, '../../../test/fixtures/leases/dhcpcd-121/wan0.lease');
  const [real] = parseLeaseFile(file, readFileSync(file), statSync(file).mtimeMs, new Map([[2, 'wan0']]));
  const s = isp2(real.address!, [real]);
  assert.equal(s.state, 'ready');
  assert.equal(s.gateway, '192.0.2.254');
  assert.equal(s.gatewaySource, 'lease');
});

test('the reason says what the lease lacks', () => {
  assert.equal(
    isp2('192.0.2.7', [lease({})]).reason,
    'no default route on wan0; the dhclient lease for 192.0.2.7 on wan0 has neither a router (option 3) nor a default classless route (option 121)',
  );
  const noDefault = isp2('192.0.2.7', [lease({ router: '192.0.2.1', classlessRoutes: [{ dst: '10.0.0.0/8', gateway: '192.0.2.3' }], classlessOption: 121 })]);
  assert.equal(noDefault.state, 'no-gateway');
  assert.equal(
    noDefault.reason,
    'no default route on wan0; the dhclient lease for 192.0.2.7 on wan0 has classless routes (option 121) without a default (0.0.0.0/0) route, ' +
      'and its router 192.0.2.1 (option 3) is ignored as RFC 3442 requires',
  );
  assert.equal(isp2('192.0.2.7', []).reason, 'no default route on wan0 and no lease for wan0');
  assert.equal(isp2('192.0.2.7', [lease({ address: '192.0.2.8', gateway: '192.0.2.1' })]).reason,
    'no default route on wan0; the lease for wan0 is for 192.0.2.8, not 192.0.2.7');
  assert.equal(isp2('192.0.2.7', [lease({ gateway: '192.0.2.7' })]).reason,
    'no default route on wan0; the dhclient lease for 192.0.2.7 on wan0 names gateway 192.0.2.7, which is not usable on 192.0.2.0/24');
  // A gateway outside the prefix is an on-link gateway (issue 8), not a reason to wait.
  const onlink = isp2('192.0.2.7', [lease({ gateway: '203.0.113.1' })]);
  assert.equal(onlink.state, 'ready');
  assert.equal(onlink.onlink, true);
});
