import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lease } from '../model/facts';
import { UplinkdError } from '../errors';
import { applyRoutingOptions, decodeClasslessRoutes, parseClasslessText } from './classless';

const base = (): Lease => ({ interface: 'eth0', client: 'dhcpcd', file: '/x' });

test('RFC 3442 encoding: widths 0, 8, 15, 24, 32 and host bits past the width cleared', () => {
  assert.deepEqual(
    decodeClasslessRoutes([0, 10, 0, 0, 1, 8, 10, 10, 0, 0, 2, 15, 198, 19, 10, 0, 0, 3, 24, 192, 168, 7, 10, 0, 0, 4, 32, 1, 2, 3, 4, 10, 0, 0, 5]),
    [
      { dst: '0.0.0.0/0', gateway: '10.0.0.1' },
      { dst: '10.0.0.0/8', gateway: '10.0.0.2' },
      { dst: '198.18.0.0/15', gateway: '10.0.0.3' },
      { dst: '192.168.7.0/24', gateway: '10.0.0.4' },
      { dst: '1.2.3.4/32', gateway: '10.0.0.5' },
    ],
  );
  assert.deepEqual(decodeClasslessRoutes([]), []);
});

test('malformed option 121 bodies are refused', () => {
  assert.throws(() => decodeClasslessRoutes([33, 1, 2, 3, 4, 5, 6, 7, 8, 9]), UplinkdError);
  assert.throws(() => decodeClasslessRoutes([24, 10, 0, 0, 10, 0, 0]), UplinkdError);
  assert.throws(() => parseClasslessText('10.0.0.0/8'), UplinkdError);
  assert.throws(() => parseClasslessText('10.0.0.0/40 1.2.3.4'), UplinkdError);
  assert.throws(() => parseClasslessText('10.0.0.0/8 nothere'), UplinkdError);
});

test('text forms of networkd and udhcpc', () => {
  const want = [{ dst: '0.0.0.0/0', gateway: '10.0.0.1' }, { dst: '10.8.0.0/16', gateway: '10.0.0.2' }];
  assert.deepEqual(parseClasslessText('0.0.0.0/0,10.0.0.1 10.8.0.0/16,10.0.0.2'), want);
  assert.deepEqual(parseClasslessText('0.0.0.0/0 10.0.0.1 10.8.1.0/16 10.0.0.2 '), want);
});

test('121 without a default entry: no gateway, and the router option is still ignored', () => {
  const lease = applyRoutingOptions(base(), { router: '10.0.0.1', classless: [{ dst: '10.8.0.0/16', gateway: '10.0.0.2' }] });
  assert.equal(lease.gateway, undefined);
  assert.equal(lease.router, '10.0.0.1');
  assert.equal(lease.classlessOption, 121);
});

test('121 wins over 249; a default with router 0.0.0.0 (on the link) is no gateway', () => {
  const both = applyRoutingOptions(base(), {
    classless: [{ dst: '0.0.0.0/0', gateway: '10.0.0.9' }],
    msClassless: [{ dst: '0.0.0.0/0', gateway: '10.0.0.8' }],
  });
  assert.equal(both.gateway, '10.0.0.9');
  assert.equal(both.classlessOption, 121);
  const onLink = applyRoutingOptions(base(), { classless: [{ dst: '0.0.0.0/0', gateway: '0.0.0.0' }] });
  assert.equal(onLink.gateway, undefined);
});

test('no classless routes: the first router is the gateway', () => {
  assert.equal(applyRoutingOptions(base(), { router: '10.0.0.1' }).gateway, '10.0.0.1');
  assert.equal(applyRoutingOptions(base(), {}).gateway, undefined);
});
