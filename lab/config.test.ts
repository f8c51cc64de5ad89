import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load';
import { renderLabConfig } from './config';
import { sampleLab } from './fixture';

const LAB = sampleLab('vlan102');

test('the lab config is valid for the config loader: static isp1, DHCP isp2, weights 1:3, balance, l4', () => {
  const c = parseConfig(renderLabConfig(LAB), LAB.configPath);
  assert.equal(c.uplinks.length, 2);
  const [isp1, isp2] = c.uplinks;
  assert.deepEqual(
    { name: isp1.name, interface: isp1.interface, dhcp: isp1.dhcp, ip: isp1.address?.ip, len: isp1.address?.prefixlen, gw: isp1.gateway, w: isp1.weight },
    { name: 'isp1', interface: 'if1', dhcp: false, ip: '198.51.100.2', len: 24, gw: '198.51.100.1', w: 1 },
  );
  assert.deepEqual(
    { name: isp2.name, interface: isp2.interface, dhcp: isp2.dhcp, address: isp2.address, w: isp2.weight },
    { name: 'isp2', interface: 'vlan102', dhcp: true, address: undefined, w: 3 },
  );
  assert.deepEqual(c.lan, ['if0']);
  assert.equal(c.default, 'balance');
  assert.equal(c.multipathHash, 'l4');
  assert.deepEqual(c.paths.leases, LAB.leaseGlobs);
});

test('default mode and weights can be overridden', () => {
  const c = parseConfig(renderLabConfig(LAB, { default: 'failover', weights: { isp2: 7 } }), 'x.yaml');
  assert.equal(c.default, 'failover');
  assert.deepEqual(c.uplinks.map((u) => u.weight), [1, 7]);
});

test('tiers and monitor sections per uplink reach the loaded config', () => {
  const c = parseConfig(
    renderLabConfig(LAB, {
      tiers: { isp1: 1, isp2: 2 },
      monitor: { isp1: { targets: ['192.0.2.80', '192.0.2.53'], settings: { interval: '100ms', down_after: 5 } } },
    }),
    'x.yaml',
  );
  assert.deepEqual(c.uplinks.map((u) => u.tier), [1, 2]);
  assert.deepEqual(c.uplinks[0].monitor?.targets, ['192.0.2.80', '192.0.2.53']);
  assert.equal(c.uplinks[0].monitor?.intervalMs, 100);
  assert.equal(c.uplinks[0].monitor?.downAfter, 5);
  assert.equal(c.uplinks[1].monitor, undefined);
});

test('each lab world has its own control socket and hooks directory, so two daemons run side by side', () => {
  // The guest's blog (ub-) and PPPoE (up-) worlds, as their generators call renderLabConfig.
  const world = (prefix: string) => ({ ...LAB, prefix, stateDir: `/run/uplinkd-lab/${prefix}`, configPath: `/run/uplinkd-lab/${prefix}/uplinkd.yaml` });
  const [blog, pppoe] = ['ub-', 'up-'].map((p) => parseConfig(renderLabConfig(world(p)), world(p).configPath));
  assert.equal(blog.paths.controlSocket, '/run/uplinkd-lab/ub-/control.sock');
  assert.equal(pppoe.paths.controlSocket, '/run/uplinkd-lab/up-/control.sock');
  assert.equal(blog.paths.hooksDir, '/run/uplinkd-lab/ub-/hooks.d');
  assert.equal(pppoe.paths.hooksDir, '/run/uplinkd-lab/up-/hooks.d');
  const overridden = parseConfig(renderLabConfig(LAB, { controlSocket: '/tmp/x.sock', hooksDir: '/tmp/h' }), 'x.yaml');
  assert.deepEqual([overridden.paths.controlSocket, overridden.paths.hooksDir], ['/tmp/x.sock', '/tmp/h']);
});
