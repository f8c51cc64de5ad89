import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Nexthop, Route } from '../model/types';
import { localHops, routeOfInterest, type RouteInterest } from './port';

const interest: RouteInterest = { tables: [254, 1000, 1141], protocols: [117], devices: ['wan0', 'wan1'] };
const route = (r: Partial<Route>): Route => ({ table: 254, dst: '11.0.0.0/24', type: 'unicast', protocol: 186, scope: 'universe', ...r });

test('main: default routes and networks behind non-uplink interfaces are read (on nexthop objects and multipath too), a BGP feed through the uplinks is not', () => {
  assert.equal(routeOfInterest(route({ dst: '0.0.0.0/0', gateway: '192.0.2.1', dev: 'wan0', protocol: 16 }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '10.0.0.0/24', dev: 'lan0', protocol: 2, scope: 'link' }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '172.17.0.0/16', dev: 'docker0', protocol: 2, scope: 'link' }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '10.9.0.0/16', gateway: '10.0.0.254', dev: 'lan0', protocol: 4 }), interest), true);
  assert.equal(routeOfInterest(route({ gateway: '192.0.2.1', dev: 'wan0' }), interest), false);
  // Through an uplink: a provider's own routes (connected, boot, static, dhcp: option 121) are read, a daemon's not.
  assert.equal(routeOfInterest(route({ dst: '192.0.2.0/24', dev: 'wan0', protocol: 2, scope: 'link' }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '10.50.0.0/16', gateway: '192.0.2.5', dev: 'wan0', protocol: 3 }), interest), true);
  assert.equal(routeOfInterest(route({ dst: '10.50.0.0/16', gateway: '192.0.2.5', dev: 'wan0', protocol: 12 }), interest), false);
  assert.equal(routeOfInterest(route({ dst: '10.50.0.0/16', protocol: 16, multipath: [{ gateway: '192.0.2.5', dev: 'wan0', weight: 1 }, { gateway: '198.18.0.5', dev: 'wan1', weight: 1 }] }), interest), false, 'over two uplinks: no one provider\'s');
  // On nexthop objects (FRR) and over several hops: judged by every hop; an unknown nexthop counts (the safe side).
  const nexthops = new Map<number, Nexthop>([
    [50, { id: 50, protocol: 186, gateway: '192.0.2.1', dev: 'wan0' }],
    [51, { id: 51, protocol: 186, gateway: '10.0.0.254', dev: 'lan0' }],
    [52, { id: 52, protocol: 186, gateway: '10.0.0.253', dev: 'lan0' }],
    [60, { id: 60, protocol: 186, group: [{ id: 51, weight: 1 }, { id: 52, weight: 2 }] }],
    [61, { id: 61, protocol: 186, group: [{ id: 50, weight: 1 }, { id: 51, weight: 1 }] }],
  ]);
  assert.equal(routeOfInterest(route({ nhid: 50 }), interest, nexthops), false, 'a feed through an uplink on nexthop objects');
  assert.equal(routeOfInterest(route({ nhid: 61 }), interest, nexthops), false, 'one hop through an uplink');
  assert.equal(routeOfInterest(route({ nhid: 51 }), interest, nexthops), true);
  assert.equal(routeOfInterest(route({ nhid: 60 }), interest, nexthops), true);
  assert.equal(routeOfInterest(route({ nhid: 99 }), interest, nexthops), false, 'no such nexthop');
  assert.equal(routeOfInterest(route({ nhid: 50 }), interest), true, 'not judged without the nexthops');
  assert.equal(routeOfInterest(route({ multipath: [{ gateway: '10.0.0.254', dev: 'lan0', weight: 1 }, { gateway: '10.0.0.253', dev: 'lan0', weight: 1 }] }), interest), true);
  assert.equal(routeOfInterest(route({ multipath: [{ gateway: '10.0.0.254', dev: 'lan0', weight: 1 }, { gateway: '192.0.2.1', dev: 'wan0', weight: 1 }] }), interest), false);
  assert.deepEqual(localHops(route({ nhid: 60 }), (d) => d.startsWith('wan'), nexthops),
    [{ dev: 'lan0', gateway: '10.0.0.254', weight: 1 }, { dev: 'lan0', gateway: '10.0.0.253', weight: 2 }]);
  // uplinkd's protocol anywhere, its tables whole.
  assert.equal(routeOfInterest(route({ gateway: '192.0.2.1', dev: 'wan0', protocol: 117 }), interest), true);
  assert.equal(routeOfInterest(route({ table: 1141, gateway: '192.0.2.1', dev: 'wan0' }), interest), true);
  assert.equal(routeOfInterest(route({ table: 3000, gateway: '192.0.2.1', dev: 'wan0' }), interest), false);
});
