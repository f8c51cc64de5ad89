import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMetrics } from './metrics';
import { formatDaemonStatus } from './status-text';
import { renderStatusPage } from './status-page';
import { SAMPLE_NOW, sampleStatus } from '../../test/support/daemon';
import type { ServedPolicy } from './policy-status';

const POLICIES: ServedPolicy[] = [
  { name: 'office', priority: 10210, uplink: 'isp1', action: 'uplink', reason: 'isp1 is usable, next in use (isp2: no carrier)',
    rules: ['from 192.168.20.0/24 lookup 1001 priority 10210 protocol 117'] },
  { name: 'voip', priority: 10213, action: 'unreachable', reason: 'strict and no uplink in use is usable (isp2: no carrier)',
    rules: ['from 192.168.10.20/32 ipproto udp dport 5060-5080 unreachable priority 10214 protocol 117'] },
];

test('status text, page and metrics show per policy the uplink it uses now and why', () => {
  const s = { ...sampleStatus(), policies: POLICIES };
  const text = formatDaemonStatus(s, SAMPLE_NOW);
  assert.match(text, /^policy office: isp1 \(isp1 is usable, next in use \(isp2: no carrier\)\)$/m);
  assert.match(text, /^policy voip: unreachable \(strict and no uplink in use is usable/m);
  const page = renderStatusPage(s, SAMPLE_NOW);
  assert.match(page, /<h2>Policies<\/h2>/);
  assert.match(page, /<code>from 192\.168\.10\.20\/32 ipproto udp dport 5060-5080 unreachable priority 10214 protocol 117<\/code>/);
  const metrics = renderMetrics(s, { version: '0', now: SAMPLE_NOW }).split('\n').filter((l) => l.startsWith('uplinkd_policy_'));
  assert.deepEqual(metrics, [
    'uplinkd_policy_uplink{policy="office",uplink="isp1"} 1',
    'uplinkd_policy_uplink{policy="office",uplink="isp2"} 0',
    'uplinkd_policy_uplink{policy="voip",uplink="isp1"} 0',
    'uplinkd_policy_uplink{policy="voip",uplink="isp2"} 0',
    'uplinkd_policy_action{policy="office",action="uplink"} 1',
    'uplinkd_policy_action{policy="office",action="unreachable"} 0',
    'uplinkd_policy_action{policy="office",action="balanced"} 0',
    'uplinkd_policy_action{policy="voip",action="uplink"} 0',
    'uplinkd_policy_action{policy="voip",action="unreachable"} 1',
    'uplinkd_policy_action{policy="voip",action="balanced"} 0',
  ]);
  // Without policies: no policy section, no series.
  assert.doesNotMatch(renderStatusPage(sampleStatus(), SAMPLE_NOW), /Policies/);
  assert.equal(renderMetrics(sampleStatus(), { version: '0', now: SAMPLE_NOW }).includes('uplinkd_policy_uplink{'), false);
});
