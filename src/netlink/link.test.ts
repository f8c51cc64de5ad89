import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import * as C from './constants';
import { decodeAddress, decodeLink } from './link';
import { ifNamesFrom } from './names';
import { attr, ipv4Attr, nested, strAttr, u32Attr, u8Attr } from './wire';

function ifinfomsg(index: number, flags: number): Buffer {
  const h = Buffer.alloc(C.IFINFOMSG_LEN);
  h.writeInt32LE(index, 4);
  h.writeUInt32LE(flags, 8);
  return h;
}

function ifaddrmsg(index: number, prefixlen: number, flags: number, scope: number): Buffer {
  const h = Buffer.alloc(C.IFADDRMSG_LEN);
  h.writeUInt8(C.AF_INET, 0);
  h.writeUInt8(prefixlen, 1);
  h.writeUInt8(flags, 2);
  h.writeUInt8(scope, 3);
  h.writeUInt32LE(index, 4);
  return h;
}

test('link: flags, name, kind from nested IFLA_LINKINFO', () => {
  const p = Buffer.concat([ifinfomsg(5, C.IFF_UP | C.IFF_LOWER_UP | 0x1000), u32Attr(4, 1500), strAttr(C.IFLA_IFNAME, 'wan0'),
    nested(C.IFLA_LINKINFO, [strAttr(C.IFLA_INFO_KIND, 'veth'), attr(2, Buffer.alloc(4))])]);
  assert.deepEqual(decodeLink(p), { index: 5, name: 'wan0', up: true, lowerUp: true, kind: 'veth' });
  const down = Buffer.concat([ifinfomsg(1, C.IFF_UP), strAttr(C.IFLA_IFNAME, 'lo')]);
  assert.deepEqual(decodeLink(down), { index: 1, name: 'lo', up: true, lowerUp: false });
  assert.throws(() => decodeLink(ifinfomsg(1, 0)), UplinkdError);
});

test('address: IFA_LOCAL preferred over IFA_ADDRESS (peer), IFA_FLAGS overrides ifa_flags', () => {
  const names = ifNamesFrom([{ index: 5, name: 'wan0' }]);
  const ptp = Buffer.concat([ifaddrmsg(5, 32, C.IFA_F_PERMANENT, C.RT_SCOPE_UNIVERSE),
    ipv4Attr(C.IFA_ADDRESS, '203.0.113.9'), ipv4Attr(C.IFA_LOCAL, '198.51.100.7')]);
  assert.deepEqual(decodeAddress(ptp, names),
    { dev: 'wan0', address: '198.51.100.7', prefixlen: 32, peer: '203.0.113.9', dynamic: false, secondary: false, scope: 'universe' });
  // ifa_flags says permanent, IFA_FLAGS (the full u32) says dynamic secondary: IFA_FLAGS wins.
  const dyn = Buffer.concat([ifaddrmsg(5, 24, C.IFA_F_PERMANENT, C.RT_SCOPE_LINK), ipv4Attr(C.IFA_ADDRESS, '10.0.0.2'),
    u32Attr(C.IFA_FLAGS, C.IFA_F_SECONDARY | 0x100)]);
  assert.deepEqual(decodeAddress(dyn, names),
    { dev: 'wan0', address: '10.0.0.2', prefixlen: 24, dynamic: true, secondary: true, scope: 'link' });
});

test('address: IPv6 skipped, no address malformed, short header malformed', () => {
  const names = ifNamesFrom([]);
  const v6 = ifaddrmsg(5, 64, 0, 0);
  v6.writeUInt8(C.AF_INET6, 0);
  assert.equal(decodeAddress(Buffer.concat([v6, attr(C.IFA_ADDRESS, Buffer.alloc(16))]), names), undefined);
  assert.throws(() => decodeAddress(Buffer.concat([ifaddrmsg(5, 24, 0, 0), u8Attr(99, 1)]), names), UplinkdError);
  assert.throws(() => decodeAddress(Buffer.alloc(4), names), UplinkdError);
});
