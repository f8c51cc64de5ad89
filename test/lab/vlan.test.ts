// Issue 2 acceptance 4: the VLAN lab (one trunk NIC, vlan101/vlan102) passes the same
// checks. Kernels without the 802.1Q driver skip with a message naming it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { labDown, labUp, vlanDriverMissing } from '../../lab/lab';
import { flowsPerUplink, startTcpEcho, tcpTally } from '../../lab/traffic';
import { apply, assertAllReachable, assertDhcpUplinkRouted, binomialTolerance, freshLab, NEEDS_ROOT, reachUplinks } from './support';

const PREFIX = `ult4${process.pid % 1000}-`;
const PORT = 8084;

describe('VLAN lab (issue 2)', { skip: NEEDS_ROOT }, () => {
  after(async () => {
    await labDown(PREFIX);
  });

  it('lab up --vlan fails clearly without the 8021q driver, or builds the trunk', async () => {
    const missing = await vlanDriverMissing(PREFIX);
    if (missing) {
      await assert.rejects(labUp({ prefix: PREFIX, vlan: true }), (e: Error) => /8021q/.test(e.message));
      return;
    }
    const lab = await freshLab({ prefix: PREFIX, vlan: true });
    assert.deepEqual(lab.uplinks.map((u) => u.interface), ['vlan101', 'vlan102']);
    await labDown(PREFIX);
  });

  it('split access, DHCP rule and balance over VLAN uplinks', async (t) => {
    const missing = await vlanDriverMissing(PREFIX);
    if (missing) {
      t.skip(missing);
      return;
    }
    const lab = await freshLab({ prefix: PREFIX, vlan: true });
    await startTcpEcho(lab.ns.router, PORT);
    await startTcpEcho(lab.ns.inet, PORT + 1);
    const without = await reachUplinks(lab, PORT);
    assert.ok(without.some((r) => !r.ping && r.tcpPeer === undefined), JSON.stringify(without));
    await apply(lab);
    assertAllReachable(lab, await reachUplinks(lab, PORT));
    await assertDhcpUplinkRouted(lab);
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT + 1, { count: 400, concurrency: 20, timeoutMs: 6000 });
    const per = flowsPerUplink(tally, lab.uplinks);
    assert.equal(tally.failed, 0);
    assert.ok(Math.abs(per.isp1 - 100) <= binomialTolerance(400, 0.25), JSON.stringify(per));
  });
});
