import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DaemonStatus } from './daemon';
import { formatDaemonStatus, formatDuration } from './status-text';

const NOW = Date.parse('2026-11-21T10:00:00Z');

function status(health: DaemonStatus['health']): DaemonStatus {
  return {
    pid: 42,
    configFile: '/etc/uplinkd/uplinkd.yaml',
    startedAt: '2026-11-21T09:00:00.000Z',
    cycles: 3,
    inSync: true,
    uplinks: [],
    pinning: 'flow pinning: disabled in the configuration',
    warnings: [],
    facts: { leases: [], health: {}, links: [], addresses: [] },
    health,
    conflicts: [],
    events: [],
  };
}

describe('daemon status text', () => {
  it('shows state, RTT, jitter, loss, time in state and why per monitored uplink', () => {
    const text = formatDaemonStatus(
      status({
        isp1: { state: 'down', since: NOW - 312_000, rttMs: null, jitterMs: null, lossPct: 100, lastError: '192.0.2.80 timeout', reason: '3 probe rounds to 192.0.2.80 unanswered within 250 ms; nothing answered for 1.5 s', targets: [], suspect: null},
        isp2: { state: 'up', since: NOW - 5_000, rttMs: 12.345, jitterMs: 0.5, lossPct: 2, lastError: null, reason: 'test', targets: [], suspect: null },
      }),
      NOW,
    );
    const isp1 = text.split('\n').find((l) => l.startsWith('isp1 '));
    const isp2 = text.split('\n').find((l) => l.startsWith('isp2 '));
    assert.match(isp1 ?? '', /^isp1\s+down\s+-\s+-\s+100%\s+5m12s\s+3 probe rounds to 192\.0\.2\.80 unanswered within 250 ms; nothing answered for 1\.5 s$/);
    assert.match(isp2 ?? '', /^isp2\s+up\s+12\.3 ms\s+0\.5 ms\s+2%\s+5s\s+-$/);
  });

  it('leaves the health table out when nothing is monitored', () => {
    assert.doesNotMatch(formatDaemonStatus(status({}), NOW), /HEALTH/);
  });

  it('formats durations', () => {
    assert.equal(formatDuration(999), '0s');
    assert.equal(formatDuration(61_000), '1m01s');
    assert.equal(formatDuration(3_725_000), '1h02m');
  });

  it('a collision says the kernel does NOT match the plan and names it, even when the last cycle applied everything', () => {
    const text = formatDaemonStatus({ ...status({}), inSync: false, collisions: ["isp1: foreign nexthop 'id 1141 via 198.51.100.50 dev up1 proto static' holds nexthop id 1141, which uplinkd needs"] }, NOW);
    assert.match(text, /^kernel does NOT match the plan: foreign objects hold its slots:$/m);
    assert.match(text, /^  collision: isp1: foreign nexthop 'id 1141 via 198\.51\.100\.50/m);
    assert.doesNotMatch(text, /kernel matches the plan/);
    assert.match(formatDaemonStatus(status({}), NOW), /^kernel matches the plan$/m);
  });
});
