import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import {
  broadcastOf, contains, firstIpv4, formatIpv4, ipv4FromBytes, isCidr, isIpv4, maskOf, networkOf, overlaps, parseCidr, parseIpv4,
} from './ipv4';

test('isIpv4 accepts dotted quads and rejects everything else', () => {
  for (const ok of ['0.0.0.0', '198.51.100.1', '255.255.255.255', '10.0.0.9']) assert.equal(isIpv4(ok), true, ok);
  for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4/24', ' 1.2.3.4', 'a.b.c.d', '', '1..2.3'])
    assert.equal(isIpv4(bad), false, bad);
});

test('parseIpv4 and formatIpv4 round-trip, including the high bit', () => {
  assert.equal(parseIpv4('0.0.0.1'), 1);
  assert.equal(parseIpv4('1.0.0.0'), 0x01000000);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIpv4('198.51.100.2'), 0xc6336402);
  for (const ip of ['0.0.0.0', '203.0.113.254', '255.255.255.255', '128.0.0.1']) assert.equal(formatIpv4(parseIpv4(ip)), ip);
});

test('parseIpv4 throws UplinkdError on bad input', () => {
  assert.throws(() => parseIpv4('300.1.1.1'), (e: unknown) => e instanceof UplinkdError && /300\.1\.1\.1/.test(e.message));
});

test('parseCidr splits address and prefix length', () => {
  assert.deepEqual(parseCidr('198.51.100.2/24'), { ip: '198.51.100.2', prefixlen: 24 });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { ip: '0.0.0.0', prefixlen: 0 });
  assert.deepEqual(parseCidr('10.1.2.3/32'), { ip: '10.1.2.3', prefixlen: 32 });
  for (const bad of ['10.0.0.1', '10.0.0.1/33', '10.0.0.1/', '10.0.0.1/024', '10.0.0.1/08', '10.0.0/8', '10.0.0.1/-1', '010.0.0.1/8',
    '10.0.0.1/+8', '10.0.0.1/8 ', ' 10.0.0.1/8', '10.0.0.1/0x8', '10.0.0.1/8/8', '10.00.0.1/8'])
    assert.throws(() => parseCidr(bad), UplinkdError, bad);
  assert.equal(isCidr('10.0.0.1/8'), true);
  assert.equal(isCidr('10.0.0.1/40'), false);
});

test('maskOf, networkOf and broadcastOf', () => {
  assert.equal(maskOf(0), 0);
  assert.equal(maskOf(24), 0xffffff00);
  assert.equal(maskOf(32), 0xffffffff);
  assert.equal(networkOf('198.51.100.2', 24), '198.51.100.0/24');
  assert.equal(networkOf('10.1.2.3', 32), '10.1.2.3/32');
  assert.equal(networkOf('10.1.2.3', 0), '0.0.0.0/0');
  assert.equal(networkOf('203.0.113.77', 26), '203.0.113.64/26');
  assert.equal(broadcastOf('203.0.113.77', 26), '203.0.113.127');
  assert.equal(broadcastOf('198.51.100.2', 24), '198.51.100.255');
  assert.equal(broadcastOf('10.0.0.1', 0), '255.255.255.255');
});

test('contains checks membership and ignores host bits of the prefix', () => {
  assert.equal(contains('198.51.100.0/24', '198.51.100.1'), true);
  assert.equal(contains('198.51.100.2/24', '198.51.100.254'), true);
  assert.equal(contains('198.51.100.0/24', '198.51.101.1'), false);
  assert.equal(contains('0.0.0.0/0', '8.8.8.8'), true);
  assert.equal(contains('10.0.0.1/32', '10.0.0.1'), true);
  assert.equal(contains('10.0.0.1/32', '10.0.0.2'), false);
  assert.equal(contains('128.0.0.0/1', '200.0.0.1'), true);
  assert.equal(contains('128.0.0.0/1', '127.0.0.1'), false);
});

test('overlaps is true when either prefix contains the other', () => {
  assert.equal(overlaps('10.0.0.0/8', '10.1.0.0/16'), true);
  assert.equal(overlaps('10.1.0.0/16', '10.0.0.0/8'), true);
  assert.equal(overlaps('10.0.0.0/24', '10.0.1.0/24'), false);
  assert.equal(overlaps('192.0.2.5/24', '192.0.2.200/25'), true);
});

test('ipv4FromBytes reads 4 bytes at an offset; firstIpv4 takes the first valid address of a list', () => {
  assert.equal(ipv4FromBytes(Uint8Array.from([9, 198, 51, 100, 7]), 1), '198.51.100.7');
  assert.equal(firstIpv4('bogus, 010.0.0.1 198.51.100.1,192.0.2.1'), '198.51.100.1');
  assert.equal(firstIpv4(' , '), undefined);
});
