import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUdhcpcLease, udhcpcLeaseScript } from './udhcpc';
import { UplinkdError } from '../errors';

// Written by udhcpcLeaseScript under busybox udhcpc 1.35 (Debian 12) against dnsmasq.
const REAL = 'interface=wan0\nip=192.0.2.120\nsubnet=255.255.255.0\nrouter=192.0.2.1\nlease=600\n';

test('lease written by the hook script', () => {
  assert.deepEqual(parseUdhcpcLease(REAL, '/run/udhcpc/wan0.lease', 5_000), {
    interface: 'wan0',
    client: 'udhcpc',
    file: '/run/udhcpc/wan0.lease',
    address: '192.0.2.120',
    gateway: '192.0.2.1',
    router: '192.0.2.1',
    expiresAt: 605_000,
  });
});

test('no router, several routers, interface from the file name', () => {
  const noRouter = parseUdhcpcLease('interface=\nip=10.1.1.2\nrouter=\nlease=\n', '/run/udhcpc/eth3.lease', 0);
  assert.deepEqual(noRouter, { interface: 'eth3', client: 'udhcpc', file: '/run/udhcpc/eth3.lease', address: '10.1.1.2' });
  assert.equal(parseUdhcpcLease(REAL.replace('router=192.0.2.1', 'router=192.0.2.5 192.0.2.1'), 'f', 0).gateway, '192.0.2.5');
});

test('a file without ip= is malformed', () => {
  assert.throws(() => parseUdhcpcLease('interface=wan0\n', 'f', 0), UplinkdError);
});

test('the hook script records to the given directory and chains to the given script', () => {
  const script = udhcpcLeaseScript('/run/x', '/bin/next');
  assert.match(script, /^#!\/bin\/sh\n/);
  assert.match(script, /lease_file="\/run\/x\/\$interface\.lease"/);
  assert.match(script, /exec \/bin\/next "\$@"\n$/);
});
