import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkdLease } from './networkd';
import { UplinkdError } from '../errors';

// /run/systemd/netif/leases/2 written by systemd-networkd 252 (Debian 12) for ifindex 2.
const REAL = `# This is private data. Do not parse.
ADDRESS=192.0.2.121
NETMASK=255.255.255.0
ROUTER=192.0.2.1
SERVER_ADDRESS=192.0.2.1
NEXT_SERVER=192.0.2.1
BROADCAST=192.0.2.255
T1=300
T2=525
LIFETIME=600
HOSTNAME=vm
CLIENTID=ff12989ae300020000ab110033bdebf95e192c
`;

const names = new Map([
  [1, 'lo'],
  [2, 'wan0'],
]);

test('KEY=VALUE lease: address, router, expiry = mtime + LIFETIME, interface by index', () => {
  assert.deepEqual(parseNetworkdLease(REAL, '/run/systemd/netif/leases/2', names, 1_000), {
    interface: 'wan0',
    client: 'networkd',
    file: '/run/systemd/netif/leases/2',
    address: '192.0.2.121',
    gateway: '192.0.2.1',
    router: '192.0.2.1',
    expiresAt: 601_000,
  });
});

test('several routers: the first one', () => {
  const text = REAL.replace('ROUTER=192.0.2.1', 'ROUTER=192.0.2.9 192.0.2.1');
  assert.equal(parseNetworkdLease(text, '/x/2', names, 0).gateway, '192.0.2.9');
});

test('JSON lease of newer systemd (strings or byte arrays, timespan lifetime)', () => {
  const json = JSON.stringify({ Address: [192, 0, 2, 7], Router: ['192.0.2.1'], Lifetime: '1h 30min' });
  const lease = parseNetworkdLease(json, '/run/systemd/netif/leases/2', names, 0);
  assert.equal(lease.address, '192.0.2.7');
  assert.equal(lease.gateway, '192.0.2.1');
  assert.equal(lease.expiresAt, 5_400_000);
});

test('unknown ifindex, non-index file name and malformed content throw UplinkdError', () => {
  assert.throws(() => parseNetworkdLease(REAL, '/x/7', names, 0), UplinkdError);
  assert.throws(() => parseNetworkdLease(REAL, '/x/eth0', names, 0), UplinkdError);
  assert.throws(() => parseNetworkdLease('ADDRESS 1.2.3.4', '/x/2', names, 0), UplinkdError);
  assert.throws(() => parseNetworkdLease('{"Address": ', '/x/2', names, 0), UplinkdError);
});
