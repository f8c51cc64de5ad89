import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDhclientLeases, parseDhclientTime } from './dhclient';
import { UplinkdError } from '../errors';

// As written by isc-dhclient 4.4.3 (Debian 12) against dnsmasq, plus a second
// interface, a renewed lease and the lease6/default-duid entries -6 runs add.
const SAMPLE = `default-duid "\\000\\001\\000\\001,\\234\\213\\017\\266\\266]\\2517\\233";
lease {
  interface "wan0";
  fixed-address 192.0.2.120;
  option subnet-mask 255.255.255.0;
  option routers 192.0.2.1;
  option dhcp-lease-time 600;
  option dhcp-message-type 5;
  option dhcp-server-identifier 192.0.2.1;
  option host-name "vm";
  renew 6 2026/11/21 09:52:09;
  rebind 6 2026/11/21 09:56:34;
  expire 6 2026/11/21 09:57:49;
}
lease {
  interface "wan1";
  fixed-address 198.51.100.7;
  option routers 198.51.100.1,198.51.100.2;
  option domain-name "isp; \\"two\\" {x}";
  renew 0 2026/11/22 01:00:00;
  rebind 0 2026/11/22 02:00:00;
  expire never;
}
lease6 {
  interface "wan0";
  ia-na 5d:a9:37:9b {
    starts 1795254469;
    iaaddr 2001:db8::5 { starts 1795254469; max-life 600; }
  }
}
lease {
  interface "wan0";
  fixed-address 192.0.2.121;
  option routers 192.0.2.254;
  renew 6 2026/11/21 10:02:09;
  expire epoch 1795255669; # Sat Nov 21 10:07:49 2026
}
`;

test('last lease block per interface wins; gateway is the first router', () => {
  const leases = parseDhclientLeases(SAMPLE, '/var/lib/dhcp/dhclient.leases');
  assert.deepEqual(leases, [
    {
      interface: 'wan1',
      client: 'dhclient',
      file: '/var/lib/dhcp/dhclient.leases',
      address: '198.51.100.7',
      gateway: '198.51.100.1',
      router: '198.51.100.1',
    },
    {
      interface: 'wan0',
      client: 'dhclient',
      file: '/var/lib/dhcp/dhclient.leases',
      address: '192.0.2.121',
      gateway: '192.0.2.254',
      router: '192.0.2.254',
      expiresAt: 1795255669000,
    },
  ]);
});

test('expire dates are UTC', () => {
  const [lease] = parseDhclientLeases(SAMPLE.split('lease {\n  interface "wan1"')[0], 'f');
  assert.equal(lease.expiresAt, Date.UTC(2026, 10, 21, 9, 57, 49));
  assert.equal(new Date(lease.expiresAt ?? 0).toISOString(), '2026-11-21T09:57:49.000Z');
});

test('time forms', () => {
  assert.equal(parseDhclientTime(['never']), undefined);
  assert.equal(parseDhclientTime(['epoch', '100']), 100_000);
  assert.equal(parseDhclientTime(['4', '2026/1/2', '3:04:05']), Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.throws(() => parseDhclientTime(['tomorrow']), UplinkdError);
});

test('a lease without routers or address still names its interface', () => {
  const leases = parseDhclientLeases('lease { interface "eth0"; option subnet-mask 255.0.0.0; }', 'f');
  assert.deepEqual(leases, [{ interface: 'eth0', client: 'dhclient', file: 'f' }]);
});

test('malformed files throw UplinkdError', () => {
  assert.throws(() => parseDhclientLeases('lease { interface "eth0";', 'f'), UplinkdError);
  assert.throws(() => parseDhclientLeases('lease { interface "eth0 }', 'f'), UplinkdError);
  assert.throws(() => parseDhclientLeases('}', 'f'), UplinkdError);
});

test('an empty file has no leases', () => {
  assert.deepEqual(parseDhclientLeases('', 'f'), []);
});
