import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dhcpcdInterface, isDhcpMessage, parseDhcpcdLease } from './dhcpcd';
import { UplinkdError } from '../errors';

// /var/lib/dhcpcd/wan0.lease written by dhcpcd 9.4.1 (Debian 12) after a DHCPACK from
// dnsmasq 2.90: yiaddr 192.0.2.120, server id 192.0.2.1, lease 600 s, routers 192.0.2.1.
const REAL_LEASE_HEX =
  '020106009640032d0000000000000000c0000278c000020100000000b6b65da9379b' +
  '00'.repeat(202) +
  '638253633501053604c00002013304000002583a040000012c3b040000020d0104ffffff001c04c00002ff0304c0000201ff' +
  '00'.repeat(14);

const real = (): Uint8Array => Uint8Array.from(Buffer.from(REAL_LEASE_HEX, 'hex'));

/** A minimal DHCPACK with the given options region (after the magic cookie). */
function message(yiaddr: number[], opts: number[], file: number[] = []): Uint8Array {
  const bytes = new Uint8Array(240 + opts.length);
  bytes.set([2, 1, 6, 0], 0);
  bytes.set(yiaddr, 16);
  bytes.set(file, 108);
  bytes.set([99, 130, 83, 99], 236);
  bytes.set(opts, 240);
  return bytes;
}

test('the real dhcpcd lease file is a raw DHCP message', () => {
  const bytes = real();
  assert.equal(bytes.length, 300);
  assert.ok(isDhcpMessage(bytes));
});

test('address, first router and expiry (mtime + lease time) from the real file', () => {
  const mtime = Date.UTC(2026, 10, 21, 9, 48, 16);
  assert.deepEqual(parseDhcpcdLease(real(), '/var/lib/dhcpcd/wan0.lease', mtime), {
    interface: 'wan0',
    client: 'dhcpcd',
    file: '/var/lib/dhcpcd/wan0.lease',
    address: '192.0.2.120',
    gateway: '192.0.2.1',
    router: '192.0.2.1',
    expiresAt: mtime + 600_000,
  });
});

test('several routers: the first is the gateway; infinite lease has no expiry', () => {
  const bytes = message([10, 0, 0, 5], [3, 8, 10, 0, 0, 1, 10, 0, 0, 2, 51, 4, 255, 255, 255, 255, 255]);
  const lease = parseDhcpcdLease(bytes, '/var/lib/dhcpcd/eth1.lease', 0);
  assert.equal(lease.gateway, '10.0.0.1');
  assert.equal(lease.address, '10.0.0.5');
  assert.equal(lease.expiresAt, undefined);
});

test('options overloaded into the file field are read', () => {
  const bytes = message([10, 0, 0, 5], [52, 1, 1, 255], [3, 4, 10, 9, 9, 9, 255]);
  assert.equal(parseDhcpcdLease(bytes, 'eth1.lease', 0).gateway, '10.9.9.9');
});

test('no routers option: no gateway', () => {
  const lease = parseDhcpcdLease(message([10, 0, 0, 5], [53, 1, 5, 255]), 'eth1.lease', 0);
  assert.equal(lease.gateway, undefined);
  assert.equal(lease.address, '10.0.0.5');
});

test('malformed messages throw UplinkdError', () => {
  assert.throws(() => parseDhcpcdLease(new Uint8Array(100), 'eth0.lease', 0), UplinkdError);
  assert.throws(() => parseDhcpcdLease(message([10, 0, 0, 5], [3, 8, 10, 0, 0, 1]), 'eth0.lease', 0), UplinkdError);
});

test('interface from the file name, wireless SSID suffix split only at a known interface', () => {
  assert.equal(dhcpcdInterface('/var/lib/dhcpcd/eth0.lease', []), 'eth0');
  assert.equal(dhcpcdInterface('/var/lib/dhcpcd/wlan0-Home-Net.lease', ['lo', 'wlan0']), 'wlan0');
  assert.equal(dhcpcdInterface('/var/lib/dhcpcd/wan-1.lease', ['wan', 'wan-1']), 'wan-1');
  assert.equal(dhcpcdInterface('/var/lib/dhcpcd/wan-1-cafe.lease', ['wan', 'wan-1']), 'wan-1');
  assert.equal(dhcpcdInterface('/var/lib/dhcpcd/wlan0-Home.lease', ['eth0']), 'wlan0-Home');
});
