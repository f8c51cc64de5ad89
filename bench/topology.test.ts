import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load';
import { renderConfig, routerSpec, scaleUplinks } from './topology';

test('the scale config is valid and keeps every path in the state dir', () => {
  const c = parseConfig(renderConfig(scaleUplinks(64), '/run/uplinkd-bench/ulb-x'), 'bench.yaml');
  assert.equal(c.uplinks.length, 64);
  assert.deepEqual(c.uplinks[63].address, { ip: '10.1.63.2', prefixlen: 24, network: '10.1.63.0/24' });
  assert.equal(c.uplinks[63].gateway, '10.1.63.1');
  // Tables come from the names (src/config/identity.ts): distinct, in table_base+1..table_base+999.
  const tables = c.uplinks.map((u) => u.table);
  assert.equal(new Set(tables).size, 64);
  assert.ok(tables.every((t) => t > 1000 && t < 2000), String(tables));
  const { leases, ...files } = c.paths;
  for (const p of [...Object.values(files), ...leases]) assert.ok(p.startsWith('/run/uplinkd-bench/ulb-x/'), p);
});

test('a DHCP uplink has no address in the config and none in the router spec', () => {
  const uplinks = [{ name: 'isp1', interface: 'wan0', weight: 1 }, ...scaleUplinks(1)];
  const c = parseConfig(renderConfig(uplinks, '/s'), 'bench.yaml');
  assert.equal(c.uplinks[0].dhcp, true);
  const spec = routerSpec(uplinks);
  assert.deepEqual(spec.interfaces, ['lan0', 'wan0', 'u0']);
  assert.deepEqual(Object.keys(spec.addresses).sort(), ['lan0', 'u0']);
});
