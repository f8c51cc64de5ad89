import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load';
import { ISSUE_POLICIES } from '../../test/support/test-policies';
import { plan } from './planner';
import { formatRule, parseSnapshot } from '../model/text';

const config = parseConfig(ISSUE_POLICIES, 'test.yaml');
// Tables derive from the uplinks' names (src/config/identity.ts).
const T = Object.fromEntries(config.uplinks.map((u) => [u.name, u.table])) as Record<'isp1' | 'isp2', number>;

const world = (if1 = 'up lower_up', if2 = 'up lower_up'): string => `
link lo up lower_up
link if0 up lower_up
link if1 ${if1}
link if2 ${if2}
addr if0 192.168.10.1/24
addr if1 198.51.100.2/24
addr if2 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev if2 proto dhcp metric 20
`;

const policyRules = (text: string, health: Record<string, 'up' | 'down'> = {}): string[] => {
  const p = plan(config, { kernel: parseSnapshot(text), leases: [], health });
  return p.desired.rules.filter((r) => r.priority >= 10201 && r.priority < 10300).map(formatRule);
};

test('all uplinks usable: each policy looks up its first uplink; the strict one also has its unreachable guard', () => {
  assert.deepEqual(policyRules(world()), [
    `from 192.168.20.0/24 lookup ${T.isp2} priority 10210 protocol 117`,
    `from 192.168.10.20/32 ipproto udp dport 5060-5080 lookup ${T.isp1} priority 10213 protocol 117`,
    'from 192.168.10.20/32 ipproto udp dport 5060-5080 unreachable priority 10214 protocol 117',
    `from all to 203.0.113.0/24 lookup ${T.isp1} priority 10216 protocol 117`,
  ]);
});

test('isp2 without carrier: office takes isp1; isp1 unhealthy: voip is unreachable, bank takes isp2, office isp2', () => {
  assert.deepEqual(policyRules(world('up lower_up', 'up')), [
    `from 192.168.20.0/24 lookup ${T.isp1} priority 10210 protocol 117`,
    `from 192.168.10.20/32 ipproto udp dport 5060-5080 lookup ${T.isp1} priority 10213 protocol 117`,
    'from 192.168.10.20/32 ipproto udp dport 5060-5080 unreachable priority 10214 protocol 117',
    `from all to 203.0.113.0/24 lookup ${T.isp1} priority 10216 protocol 117`,
  ]);
  const down = plan(config, { kernel: parseSnapshot(world()), leases: [], health: { isp1: 'down' } });
  assert.deepEqual(down.desired.rules.filter((r) => r.priority >= 10201 && r.priority < 10300).map(formatRule), [
    `from 192.168.20.0/24 lookup ${T.isp2} priority 10210 protocol 117`,
    'from 192.168.10.20/32 ipproto udp dport 5060-5080 unreachable priority 10214 protocol 117',
    `from all to 203.0.113.0/24 lookup ${T.isp2} priority 10216 protocol 117`,
  ]);
  assert.deepEqual(down.policies.map((p) => [p.name, p.action, p.uplink, p.reason]), [
    ['office', 'uplink', 'isp2', 'isp2 is usable, first in use'],
    ['voip', 'unreachable', undefined, 'strict and no uplink in use is usable (isp1: health checks failing)'],
    ['bank', 'uplink', 'isp2', 'isp2 is usable, next in use (isp1: health checks failing)'],
  ]);
});

test('no uplink of a non-strict policy usable: no rule, its traffic is balanced like any other', () => {
  const p = plan(config, { kernel: parseSnapshot(world('up', 'up')), leases: [], health: {} });
  assert.deepEqual(p.policies.map((s) => [s.name, s.action, s.rules.length]), [['office', 'balanced', 0], ['voip', 'unreachable', 1], ['bank', 'balanced', 0]]);
});

test('policies sit after the pinned, from, oif and suppress_prefixlength rules and before the balance rule', () => {
  const rules = plan(config, { kernel: parseSnapshot(world()), leases: [], health: {} }).desired.rules;
  const prio = (pred: (r: (typeof rules)[number]) => boolean): number[] => rules.filter(pred).map((r) => r.priority);
  const policies = prio((r) => r.priority >= 10210 && r.priority < 10300);
  assert.ok(Math.max(...prio((r) => r.src === '198.51.100.2/32' || r.oif !== undefined || r.suppressPrefixlen === 0 || r.fwmark !== undefined)) < Math.min(...policies));
  assert.ok(Math.max(...policies) < Math.min(...prio((r) => r.table === 1000)));
});
