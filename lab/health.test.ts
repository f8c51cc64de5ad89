import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load';
import { MONITOR_DEFAULTS } from '../src/config/defaults';
import { healthDaemonConfig, SECOND_TARGET, targetCountChain } from './health';
import { sampleLab } from './fixture';

const LAB = sampleLab();

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

test('probe counters at the targets: one rule per uplink source and target, in mangle INPUT, counting only (no verdict)', () => {
  const c = targetCountChain(['198.51.100.10', '203.0.113.10'], ['192.0.2.80', SECOND_TARGET]);
  assert.deepEqual([c.table, c.hook], ['mangle', 'INPUT']);
  assert.deepEqual(c.rules, [
    '-s 198.51.100.10 -d 192.0.2.80 -p icmp --icmp-type echo-request',
    '-s 198.51.100.10 -d 192.0.2.53 -p icmp --icmp-type echo-request',
    '-s 203.0.113.10 -d 192.0.2.80 -p icmp --icmp-type echo-request',
    '-s 203.0.113.10 -d 192.0.2.53 -p icmp --icmp-type echo-request',
  ]);
});
