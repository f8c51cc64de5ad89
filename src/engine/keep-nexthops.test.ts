import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakePort } from '../../test/support/fake-port';
import { OWNED_NEXTHOPS as OURS, TWO_UPLINKS as config } from '../../test/support/owned-nexthops';
import { parseSnapshot } from '../model/text';
import type { NftRunner } from '../nft/nft';
import { diff } from '../reconcile/diff';
import { keepNexthopsInUse, observeTeardown } from './cycle';


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
