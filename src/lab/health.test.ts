import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../config/load';
import { MONITOR_DEFAULTS } from '../config/defaults';
import { healthDaemonConfig, SECOND_TARGET } from './health';
import type { LabInfo } from './topology';

const LAB: LabInfo = {
  prefix: 'ux-',
  vlan: false,
  dhcpClient: 'dhclient',
  stateDir: '/run/uplinkd-lab/ux-',
  configPath: '/run/uplinkd-lab/ux-/uplinkd.yaml',
  leaseGlobs: ['/run/uplinkd-lab/ux-/dhclient.*.leases'],
  ns: { lan: 'ux-lan', router: 'ux-router', isp1: 'ux-isp1', isp2: 'ux-isp2', inet: 'ux-inet' },
  lan: { interface: 'if0', network: '192.168.10.0/24', routerAddress: '192.168.10.1', hostAddress: '192.168.10.10' },
  uplinks: [
    { name: 'isp1', interface: 'if1', mode: 'static', address: '198.51.100.2', prefixlen: 24, network: '198.51.100.0/24', gateway: '198.51.100.1', providerNs: 'ux-isp1' },
    { name: 'isp2', interface: 'if2', mode: 'dhcp', address: '203.0.113.120', prefixlen: 24, network: '203.0.113.0/24', gateway: '203.0.113.1', providerNs: 'ux-isp2' },
  ],
  internetHost: '192.0.2.80',
};

test('the health config monitors both uplinks with the two lab targets and default settings', () => {
  const c = parseConfig(healthDaemonConfig(LAB, '/run/x/c.sock', { hooksDir: '/run/x/hooks' }), 'h.yaml');
  for (const u of c.uplinks) assert.deepEqual(u.monitor, { ...MONITOR_DEFAULTS, targets: ['192.0.2.80', SECOND_TARGET] }, u.name);
  assert.equal(c.paths.controlSocket, '/run/x/c.sock');
  assert.equal(c.paths.hooksDir, '/run/x/hooks');
  assert.equal(c.daemon.debounceMs, 5);
});

test('tiers, settings and the monitored set are passed through', () => {
  const c = parseConfig(
    healthDaemonConfig(LAB, '/run/x/c.sock', { tiers: { isp1: 1, isp2: 2 }, monitored: ['isp2'], settings: { down_after: 3 }, default: 'failover' }),
    'h.yaml',
  );
  assert.deepEqual(c.uplinks.map((u) => u.tier), [1, 2]);
  assert.equal(c.uplinks[0].monitor, undefined);
  assert.equal(c.uplinks[1].monitor?.downAfter, 3);
  assert.equal(c.default, 'failover');
  assert.equal(parseConfig(healthDaemonConfig(LAB, '/s', { monitored: [] }), 'p.yaml').uplinks.some((u) => u.monitor), false);
});
