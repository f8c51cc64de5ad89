import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OWNED_NEXTHOPS as OURS, TWO_UPLINKS as config } from '../../test/support/owned-nexthops';
import { formatChange, parseSnapshot } from '../model/text';
import { diff } from './diff';
import { describeKept, nexthopsInForeignUse } from './nexthop-users';


const ids = (s: ReturnType<typeof nexthopsInForeignUse>) => s.map((k) => k.nexthop.id);

test('a route of another protocol on a nexthop being deleted keeps it; uplinkd\'s own routes and untouched nexthops do not', () => {
  const k = parseSnapshot(`${OURS}
route table 3000 198.18.0.0/15 nhid 1003 proto static
route table 3001 198.18.0.0/15 nhid 1002 proto static
`);
  const kept = nexthopsInForeignUse(new Set([1000, 1003]), k, k.routes, [117]);
  assert.deepEqual(ids(kept), [1003], '1002 is used but not deleted; 1000 is deleted but only uplinkd\'s route uses it');
  assert.equal(describeKept(kept[0]!).split(': ')[0], 'nexthop id 1003 via 192.0.2.1 dev if3 proto 117 kept');
  assert.match(describeKept(kept[0]!), /route 198\.18\.0\.0\/15 nhid 1003 table 3000 proto static \(protocol static\)/);
});

test('a kept group keeps its members; a foreign group holding a member keeps that member', () => {
  const k = parseSnapshot(`${OURS}
route table 3000 198.18.0.0/15 nhid 1000 proto 12
nexthop id 50 group 1003 proto static
`);
  const kept = nexthopsInForeignUse(new Set([1000, 1001, 1002, 1003]), k, k.routes, [117]);
  assert.deepEqual(ids(kept), [1000, 1001, 1002, 1003]);
  assert.deepEqual(kept.find((x) => x.nexthop.id === 1001)?.memberOf, [1000]);
  assert.match(describeKept(kept.find((x) => x.nexthop.id === 1003)!), /nexthop group id 50 group 1003,1 proto static \(protocol static\)/);
});

test('diff with `keep`: the kept nexthop is neither deleted nor recreated, and a wanted group holding it is replaced without it', () => {
  const k = parseSnapshot(`${OURS}
nexthop id 1004 group 1001,1/1003,1 proto 117
`);
  // The plan wants the balance group without 1003 (an uplink removed): without keep, 1003's delete shrinks the group.
  const nexthops = [...k.nexthops.filter((n) => n.id !== 1003 && n.id !== 1004), ...parseSnapshot('nexthop id 1004 group 1001,1 proto 117').nexthops];
  const desired = { routes: k.routes, rules: k.rules, nexthops };
  const plain = diff(desired, k, config).map(formatChange);
  assert.ok(plain.includes('ip nexthop del id 1003'), plain.join('\n'));
  assert.ok(!plain.some((c) => c.startsWith('ip nexthop replace id 1004')), 'shrunk by the delete');
  const kept = diff(desired, k, config, new Set([1003])).map(formatChange);
  assert.ok(!kept.some((c) => / id 1003\b/.test(c)), kept.join('\n'));
  assert.ok(kept.includes('ip nexthop replace id 1004 group 1001,1 proto 117'), kept.join('\n'));
});


test('diff with `keep`: a kept group that would be recreated (other bucket count) is left as it is', () => {
  const have = parseSnapshot('nexthop id 1000 group 1001,1/1002,1 type resilient buckets 32 idle_timer 120 unbalanced_timer 0 proto 117');
  const k = parseSnapshot(OURS.replace(/nexthop id 1000 .*\n/, ''));
  k.nexthops.push(...have.nexthops);
  const want = parseSnapshot('nexthop id 1000 group 1001,1/1002,1 type resilient buckets 64 idle_timer 120 unbalanced_timer 0 proto 117').nexthops[0]!;
  const desired = { routes: k.routes, rules: k.rules, nexthops: [...k.nexthops.filter((n) => n.id !== 1000), want] };
  const plain = diff(desired, k, config).map(formatChange);
  assert.ok(plain.includes('ip nexthop del id 1000'), plain.join('\n'));
  const kept = diff(desired, k, config, new Set([1000])).map(formatChange);
  assert.ok(!kept.some((c) => / id 1000\b/.test(c)), kept.join('\n'));
});
