// Issue 2 acceptance 2: LAN flows use both uplinks in proportion to weight (balance),
// only the first with `default: failover`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { flowsPerUplink, startTcpEcho, tcpTally } from '../../lab/traffic';
import { apply, binomialTolerance, freshLab, NEEDS_ROOT, writeConfig } from './support';

const PREFIX = `ult2${process.pid % 1000}-`;
const PORT = 8082;
const FLOWS = 400;

describe('balancing (issue 2)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    await startTcpEcho(lab.ns.inet, PORT);
  });
  after(async () => {
    await labDown(PREFIX);
  });

  it(`balance: ${FLOWS} flows split about 1:3 by weight`, async (t) => {
    await apply(lab, await writeConfig(lab, 'balance.yaml', { default: 'balance', weights: { isp1: 1, isp2: 3 } }));
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT, { count: FLOWS, concurrency: 20 });
    assert.equal(tally.failed, 0, `failed flows: ${JSON.stringify(tally.errors)}`);
    const per = flowsPerUplink(tally, lab.uplinks);
    t.diagnostic(`flows per uplink: ${JSON.stringify(per)}`);
    assert.equal(per.isp1 + per.isp2, FLOWS, `flows from unexpected sources: ${JSON.stringify(tally.seen)}`);
    const p = 1 / 4;
    const tolerance = binomialTolerance(FLOWS, p); // 5 sigma = 43 flows
    assert.ok(
      Math.abs(per.isp1 - FLOWS * p) <= tolerance,
      `isp1 carried ${per.isp1} of ${FLOWS} flows, expected ${FLOWS * p} ± ${tolerance.toFixed(1)}`,
    );
  });

  it('failover: every flow uses the first uplink', async () => {
    await apply(lab, await writeConfig(lab, 'failover.yaml', { default: 'failover' }));
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT, { count: 100, concurrency: 20 });
    assert.equal(tally.failed, 0, `failed flows: ${JSON.stringify(tally.errors)}`);
    assert.deepEqual(flowsPerUplink(tally, lab.uplinks), { isp1: 100, isp2: 0 });
  });
});
