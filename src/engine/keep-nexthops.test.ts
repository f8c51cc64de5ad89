import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakePort } from '../../test/support/fake-port';
import { testConfig } from '../../test/support/test-config';
import { parseSnapshot } from '../model/text';
import type { NftRunner } from '../nft/nft';
import { diff } from '../reconcile/diff';
import { keepNexthopsInUse, observeTeardown } from './cycle';

const config = testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', table: 1001 },
  { name: 'isp2', interface: 'if2', address: '203.0.113.2/24', gateway: '203.0.113.1', table: 1002 },
]);

// What uplinkd made for two uplinks, balanced, plus an uplink of an earlier configuration (1003).
const OURS = `
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

/** `nft` without the table: the teardown has no nft change. */
const noTable: NftRunner = async (args) => {
  if (args.includes('list')) return { code: 1, stdout: '', stderr: 'Error: No such file or directory' };
  return { code: 0, stdout: '', stderr: '' };
};

test('teardown against the in-memory kernel: another program\'s route on an uplinkd nexthop survives, everything else of uplinkd goes', async () => {
  const port = new FakePort(parseSnapshot(`${OURS}
route table 3000 198.18.0.0/15 nhid 1002 proto static
`));
  const teardown = await observeTeardown(port, config, noTable);
  assert.deepEqual(teardown.kept.map((k) => k.nexthop.id), [1002]);
  for (const c of teardown.netlink) await port.apply(c);
  const after = await port.snapshot();
  assert.deepEqual(after.nexthops.map((n) => n.id), [1002]);
  assert.ok(after.routes.some((r) => r.table === 3000 && r.nhid === 1002), 'the other program\'s route is there');
  assert.equal(after.rules.length, 0);
  assert.ok(!after.routes.some((r) => r.protocol === 117));
});

test('keepNexthopsInUse asks only when a nexthop is to be deleted, and a nexthop the kernel already removed keeps nothing', async () => {
  const port = new FakePort(parseSnapshot(`${OURS}
route table 3000 198.18.0.0/15 nhid 1003 proto static
`));
  const asked: number[][] = [];
  const read = port.nexthopUsers.bind(port);
  port.nexthopUsers = (ids) => { asked.push([...ids]); return read(ids); };
  const none = await keepNexthopsInUse(port, [], [117], () => assert.fail('nothing to recompute'));
  assert.deepEqual(none, { changes: [], kept: [] });
  assert.deepEqual(asked, []);
  // A view older than the kernel: 1003 went with its device (and the route on it), silently.
  const stale = await port.snapshot();
  await port.apply({ op: 'del', kind: 'nexthop', nexthop: { id: 1003, protocol: 117 } });
  const changes = diff({ routes: [], rules: [], nexthops: [] }, stale, config);
  const guarded = await keepNexthopsInUse(port, changes, [117], () => assert.fail('nothing is kept'));
  assert.equal(guarded.changes, changes);
  assert.deepEqual(asked, [[1000, 1001, 1002, 1003]]);
});
