import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeLabelValue, renderMetrics } from './metrics';
import { SAMPLE_NOW, sampleStatus } from '../../test/support/daemon';

const INFO = { version: '0.1.0', now: SAMPLE_NOW };

/** Sample lines (no comments) of a body. */
const samples = (body: string) => body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('metrics rendering (Prometheus text format 0.0.4)', () => {
  it('renders the sample status as exactly these series, in this order', () => {
    assert.deepEqual(samples(renderMetrics(sampleStatus(), INFO)), [
      'uplinkd_build_info{version="0.1.0"} 1',
      'uplinkd_start_time_seconds 1795251600',
      'uplinkd_cycles_total 17',
      'uplinkd_changes_applied_total 23',
      'uplinkd_changes_failed_total 1',
      'uplinkd_last_cycle_timestamp_seconds 1795255198',
      'uplinkd_in_sync 1',
      'uplinkd_conflicts 1',
      'uplinkd_pinning_in_place 1',
      'uplinkd_uplink_up{uplink="isp1",interface="if1"} 1',
      'uplinkd_uplink_up{uplink="isp2",interface="if2"} 0',
      'uplinkd_uplink_state{uplink="isp1",state="ready"} 1',
      'uplinkd_uplink_state{uplink="isp1",state="waiting"} 0',
      'uplinkd_uplink_state{uplink="isp1",state="link-down"} 0',
      'uplinkd_uplink_state{uplink="isp1",state="no-address"} 0',
      'uplinkd_uplink_state{uplink="isp1",state="no-gateway"} 0',
      'uplinkd_uplink_state{uplink="isp1",state="unhealthy"} 0',
      'uplinkd_uplink_state{uplink="isp2",state="ready"} 0',
      'uplinkd_uplink_state{uplink="isp2",state="waiting"} 1',
      'uplinkd_uplink_state{uplink="isp2",state="link-down"} 0',
      'uplinkd_uplink_state{uplink="isp2",state="no-address"} 0',
      'uplinkd_uplink_state{uplink="isp2",state="no-gateway"} 0',
      'uplinkd_uplink_state{uplink="isp2",state="unhealthy"} 0',
      'uplinkd_uplink_in_default{uplink="isp1"} 1',
      'uplinkd_uplink_in_default{uplink="isp2"} 0',
    'uplinkd_last_resort 0',
      'uplinkd_uplink_weight{uplink="isp1"} 1',
      'uplinkd_uplink_weight{uplink="isp2"} 3',
      'uplinkd_health_state{uplink="isp1",state="up"} 1',
      'uplinkd_health_state{uplink="isp1",state="degraded"} 0',
      'uplinkd_health_state{uplink="isp1",state="down"} 0',
      'uplinkd_health_state{uplink="isp1",state="unknown"} 0',
      'uplinkd_health_state{uplink="isp2",state="up"} 0',
      'uplinkd_health_state{uplink="isp2",state="degraded"} 0',
      'uplinkd_health_state{uplink="isp2",state="down"} 0',
      'uplinkd_health_state{uplink="isp2",state="unknown"} 1',
      // isp2 has no RTT, jitter or loss yet: left out, not NaN.
      'uplinkd_health_rtt_seconds{uplink="isp1"} 0.012345',
      'uplinkd_health_jitter_seconds{uplink="isp1"} 0.00075',
      'uplinkd_health_loss_ratio{uplink="isp1"} 0.02',
      'uplinkd_health_state_seconds{uplink="isp1"} 90.5',
      'uplinkd_health_state_seconds{uplink="isp2"} 1',
    ]);
  });

  it('gives every family one HELP and one TYPE line right before its samples, and ends with a newline', () => {
    const body = renderMetrics(sampleStatus(), INFO);
    assert.ok(body.endsWith('\n'));
    assert.doesNotMatch(body, /NaN|Infinity|undefined/);
    const lines = body.trimEnd().split('\n');
    const seen = new Set<string>();
    for (let i = 0; i < lines.length; i++) {
      const name = /^[a-z_]+/.exec(lines[i].replace(/^# (HELP|TYPE) /, ''))![0];
      if (lines[i].startsWith('# HELP ')) {
        assert.ok(!seen.has(name), `${name} described twice`);
        seen.add(name);
        assert.match(lines[i + 1], new RegExp(`^# TYPE ${name} (gauge|counter)$`));
      } else if (!lines[i].startsWith('#')) {
        assert.ok(seen.has(name), `${name} has samples before its HELP`);
      }
    }
    assert.match(body, /^# TYPE uplinkd_cycles_total counter$/m);
    assert.match(body, /^# TYPE uplinkd_uplink_up gauge$/m);
  });

  it('omits series whose value is unknown', () => {
    const s = sampleStatus();
    delete s.totals;
    delete s.lastCycle;
    delete s.pinningInPlace;
    s.health = {};
    const body = renderMetrics(s, INFO);
    for (const name of ['uplinkd_changes_applied_total', 'uplinkd_last_cycle_timestamp_seconds', 'uplinkd_pinning_in_place', 'uplinkd_health_']) {
      assert.ok(!body.includes(name), `${name} should be left out:\n${body}`);
    }
    assert.match(body, /^uplinkd_uplink_up\{uplink="isp1",interface="if1"\} 1$/m, 'known series stay');
  });

  it('pinning not in place and uplinks out of sync read 0', () => {
    const s = { ...sampleStatus(), pinningInPlace: false, inSync: false, conflicts: [] };
    const body = renderMetrics(s, INFO);
    assert.match(body, /^uplinkd_pinning_in_place 0$/m);
    assert.match(body, /^uplinkd_in_sync 0$/m);
    assert.match(body, /^uplinkd_conflicts 0$/m);
  });

  it('escapes label values: backslash, double quote, line feed', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    const s = sampleStatus();
    s.uplinks = [{ ...s.uplinks[0], name: 'is"p\\1\n', interface: 'e\\th0' }];
    const body = renderMetrics(s, { version: '1.0"x', now: SAMPLE_NOW });
    assert.match(body, /^uplinkd_build_info\{version="1\.0\\"x"\} 1$/m);
    const up = body.split('\n').find((l) => l.startsWith('uplinkd_uplink_up{'));
    assert.equal(up, 'uplinkd_uplink_up{uplink="is\\"p\\\\1\\n",interface="e\\\\th0"} 1');
  });
});
