// Issue 2 acceptance 5: apply is idempotent, down restores the kernel as it was,
// and rules/routes added by someone else survive both.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ipIn } from '../../lab/exec';
import { routingState, rules, routesOfTable, uplinkd, type RoutingState } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { apply, changesApplied, down, freshLab, NEEDS_ROOT } from './support';

const PREFIX = `ult5${process.pid % 1000}-`;

describe('apply twice, down, foreign objects (issue 2)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let before_: RoutingState;
  let afterFirst: RoutingState;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    const isp1 = lab.uplinks[0];
    // An admin's own rule inside uplinkd's priority band and route inside uplinkd's table.
    await ipIn(lab.ns.router, ['rule', 'add', 'from', '10.9.9.9', 'lookup', '1001', 'priority', '10150']);
    await ipIn(lab.ns.router, ['route', 'add', '10.8.0.0/16', 'via', isp1.gateway, 'dev', isp1.interface, 'table', '1001']);
    before_ = await routingState(lab.ns.router);
  });
  after(async () => {
    await labDown(PREFIX);
  });

  it('the first apply changes the kernel', async () => {
    assert.ok((await apply(lab)) > 0);
    afterFirst = await routingState(lab.ns.router);
    assert.notDeepEqual(afterFirst, before_);
  });

  it('the second apply changes nothing and plan shows no changes', async () => {
    assert.equal(await apply(lab), 0);
    assert.deepEqual(await routingState(lab.ns.router), afterFirst);
    const plan = await uplinkd(lab.ns.router, ['plan', '-c', lab.configPath]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^no changes$/m);
  });

  it("someone else's rule and route survive apply", async () => {
    assert.ok((await rules(lab.ns.router)).some((r) => r.priority === 10150 && r.src === '10.9.9.9'));
    assert.ok((await routesOfTable(lab.ns.router, 1001)).some((r) => r.dst === '10.8.0.0/16'));
  });

  it('down leaves rules, routes and nexthops as they were before apply (foreign ones included)', async () => {
    await down(lab);
    assert.deepEqual(await routingState(lab.ns.router), before_);
  });

  it('apply after down reports its changes again, then 0', async () => {
    const r = await uplinkd(lab.ns.router, ['apply', '-c', lab.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const n = changesApplied(r.stdout);
    // One line per change before the summary.
    assert.equal(r.stdout.trim().split('\n').length - 1, n, r.stdout);
    assert.equal(await apply(lab), 0);
    await down(lab);
  });
});
