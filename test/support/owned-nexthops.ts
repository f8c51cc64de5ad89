// A kernel as uplinkd leaves it for two balanced uplinks, plus the nexthop of an uplink of an earlier configuration:
// the world of the tests of nexthops other programs use (src/reconcile/nexthop-users.test.ts,
// src/engine/keep-nexthops.test.ts).
import { testConfig } from './test-config';

/** isp1 on if1 (table 1001) and isp2 on if2 (table 1002), balanced. */
export const TWO_UPLINKS = testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', table: 1001 },
  { name: 'isp2', interface: 'if2', address: '203.0.113.2/24', gateway: '203.0.113.1', table: 1002 },
]);

/** What uplinkd made for TWO_UPLINKS, plus nexthop 1003 of an earlier uplink on if3 (parseSnapshot text). */
export const OWNED_NEXTHOPS = `
link lo up lower_up
link if1 up lower_up
link if2 up lower_up
link if3 up lower_up
addr if1 198.51.100.2/24
addr if2 203.0.113.2/24
addr if3 192.0.2.2/24
nexthop id 1001 via 198.51.100.1 dev if1 proto 117
nexthop id 1002 via 203.0.113.1 dev if2 proto 117
nexthop id 1003 via 192.0.2.1 dev if3 proto 117
nexthop id 1000 group 1001,1/1002,1 proto 117
route table 1000 default nhid 1000 proto 117
rule 10300 from all lookup 1000 protocol 117
`;
