import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load';
import { ISSUE_POLICIES } from '../../test/support/test-policies';
import { plan } from './planner';
import { parseSnapshot } from '../model/text';

const WORLD = `link lo up lower_up
link if0 up lower_up
link if1 up lower_up
link if2 up lower_up
addr if0 192.168.10.1/24
addr if1 198.51.100.2/24
addr if2 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev if2 proto dhcp metric 20
rule 0 from all lookup local
rule 32766 from all lookup main
rule 32767 from all lookup default
`;

const messages = (rules: string): string[] =>
  plan(parseConfig(ISSUE_POLICIES, 't.yaml'), { kernel: parseSnapshot(WORLD + rules), leases: [], health: {} }).warnings;

test("the kernel's own rules get no message; an admin rule at any priority says what it does", () => {
  assert.deepEqual(messages(''), []);
  assert.deepEqual(messages('rule 9000 from 192.168.20.0/24 lookup 1002 protocol static\n'), [
    "admin rule 'from 192.168.20.0/24 lookup 1002 priority 9000 protocol static': comes before flow pinning and split access, "
      + 'so port-forward replies and established connections it matches leave by table 1002, not through the uplink they came in on; '
      + 'shadows policy office: they never see the packets it matches for destinations table 1002 has a route to',
  ]);
  assert.deepEqual(messages('rule 10205 from 192.168.20.0/24 ipproto tcp dport 443 lookup 1001\n'), [
    "admin rule 'from 192.168.20.0/24 ipproto tcp dport 443 lookup 1001 priority 10205 protocol unspec': port-forward replies and "
      + "established connections are routed by uplinkd's earlier rules first, so it does not change them; precedes policy office "
      + '(priority 10210) and later uplinkd rules for the packets it matches',
  ]);
  assert.match(messages('rule 20000 to 203.0.113.0/24 lookup 1002\n')[0]!, /comes after all of uplinkd's rules: it only sees traffic no uplink took$/);
  assert.match(messages('rule 10212 from 192.168.10.20 ipproto udp unreachable\n')[0]!, /shadows policy voip:/);
});
