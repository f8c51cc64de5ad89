// Issue 2 acceptance 6: a bad config gives FILE:LINE:COL: field: message, exit 2,
// and leaves the kernel untouched.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { routingState, uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `ult6${process.pid % 1000}-`;

describe('bad config (issue 2)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let bad: string;
  let badLine: number;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    // The lab's own config with isp1's gateway made invalid.
    const lines = (await fs.readFile(lab.configPath, 'utf8')).split('\n');
    const i = lines.findIndex((l) => /^\s+gateway: /.test(l));
    assert.ok(i >= 0, 'the lab config has a static gateway');
    lines[i] = lines[i].replace(/gateway: .*/, 'gateway: 198.51.100.300');
    badLine = i + 1;
    bad = path.join(lab.stateDir, 'bad.yaml');
    await fs.writeFile(bad, lines.join('\n'));
  });
  after(async () => {
    await labDown(PREFIX);
  });

  it('check exits 2 naming file, line, column and field', async () => {
    const r = await uplinkd(lab.ns.router, ['check', '-c', bad]);
    assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
    const m = new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+): uplinks\\[0\\]\\.gateway: .+`, 'm').exec(r.stderr);
    assert.ok(m, `no 'FILE:LINE:COL: uplinks[0].gateway: ...' line in:\n${r.stderr}`);
    assert.equal(Number(m[1]), badLine);
    assert.ok(Number(m[2]) >= 1, 'column is 1-based');
  });

  for (const command of ['apply', 'plan']) {
    it(`${command} exits 2 and leaves the kernel untouched`, async () => {
      const before_ = await routingState(lab.ns.router);
      const r = await uplinkd(lab.ns.router, [command, '-c', bad]);
      assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /uplinks\[0\]\.gateway/);
      assert.deepEqual(await routingState(lab.ns.router), before_);
    });
  }
});
