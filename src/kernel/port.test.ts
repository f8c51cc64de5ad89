import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Route } from '../model/types';
import { routeOfInterest, type RouteInterest } from './port';

const interest: RouteInterest = { tables: [254, 1000, 1141], protocols: [117], devices: ['wan0', 'wan1'] };
const route = (r: Partial<Route>): Route => ({ table: 254, dst: '11.0.0.0/24', type: 'unicast', protocol: 186, scope: 'universe', ...r });

test('main: default routes and networks behind non-uplink interfaces are read, a BGP feed through the uplinks is not', () => {
  assert.equal(routeOfInterest(route({ dst: '0.0.0.0/0', gateway: '192.0.2.1', dev: 'wan0', protocol: 16 }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '10.0.0.0/24', dev: 'lan0', protocol: 2, scope: 'link' }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '172.17.0.0/16', dev: 'docker0', protocol: 2, scope: 'link' }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '10.9.0.0/16', gateway: '10.0.0.254', dev: 'lan0', protocol: 4 }), interest), true);
  assert.equal(routeOfInterest(route({ gateway: '192.0.2.1', dev: 'wan0' }), interest), false);
  assert.equal(routeOfInterest(route({ dst: '192.0.2.0/24', dev: 'wan0', protocol: 2, scope: 'link' }), interest), false);
  assert.equal(routeOfInterest(route({ nhid: 50 }), interest), false);
  assert.equal(routeOfInterest(route({ multipath: [{ gateway: '10.0.0.254', dev: 'lan0', weight: 1 }] }), interest), false);
  // uplinkd's protocol anywhere, its tables whole.
  assert.equal(routeOfInterest(route({ gateway: '192.0.2.1', dev: 'wan0', protocol: 117 }), interest), true);
  assert.equal(routeOfInterest(route({ table: 1141, gateway: '192.0.2.1', dev: 'wan0' }), interest), true);
  assert.equal(routeOfInterest(route({ table: 3000, gateway: '192.0.2.1', dev: 'wan0' }), interest), false);
});
