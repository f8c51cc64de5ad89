// Policies (plan/policies.ts) through the diff: what changes in the kernel when an uplink of a policy goes away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load';
import { formatChange, parseSnapshot } from '../model/text';
import { plan } from '../plan/planner';
import { ISSUE_POLICIES } from '../../test/support/test-policies';
import { diff } from './diff';

const config = parseConfig(ISSUE_POLICIES, 'test.yaml');
// Tables derive from the uplinks' names (src/config/identity.ts).
const T = Object.fromEntries(config.uplinks.map((u) => [u.name, u.table])) as Record<'isp1' | 'isp2', number>;

const world = (if2: string): string => `
link lo up lower_up
link if0 up lower_up
link if1 up lower_up
link if2 ${if2}
addr if0 192.168.10.1/24
addr if1 198.51.100.2/24
addr if2 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev if2 proto dhcp metric 20
`;

test('a change of uplink swaps exactly the lookup rules of the policies concerned', () => {
  const before = plan(config, { kernel: parseSnapshot(world('up lower_up')), leases: [], health: {} });
  const kernel = parseSnapshot(world('up'));
  kernel.rules = before.desired.rules;
  const after = plan(config, { kernel, leases: [], health: {} });
  assert.deepEqual(diff(after.desired, kernel, config).filter((c) => c.kind === 'rule').map(formatChange), [
    `ip rule add from 192.168.20.0/24 lookup ${T.isp1} priority 10210 protocol 117`,
    `ip rule del from 192.168.20.0/24 lookup ${T.isp2} priority 10210 protocol 117`,
  ]);
});
