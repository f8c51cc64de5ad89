// A change the kernel refuses on the first cycle (here a gateway that is the broadcast address of the
// kernel's /25 while the file says /24: `EINVAL Nexthop has invalid gateway`): the daemon's `ready` says
// converged=false, and `uplinkd status` shows the refusal on that uplink's line and in --json, while the
// other uplink is fine. A real daemon and kernel in a namespace of its own.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `f8a${process.pid % 1000}-`;
const NS = `${PREFIX}x`;
const STATE = `${stateDirOf(PREFIX)}x`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');

const TEXT = [
  'uplinks:',
  '  - {name: isp1, interface: up1, address: 10.82.1.2/24, gateway: 10.82.1.127}',
  '  - {name: isp2, interface: up2, address: 10.82.2.2/24, gateway: 10.82.2.1}',
  'pinning: {enabled: false}',
  ...statePaths(STATE),
  '',
].join('\n');

describe('refused changes on the status line (C2)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    // isp1's address is a /25 in the kernel (the file says /24): its gateway 10.82.1.127 is the kernel's broadcast address.
    await vethNamespace(NS, STATE, [['up1', '10.82.1.2/25'], ['up2', '10.82.2.2/24']]);
    await fs.writeFile(CONFIG, TEXT);
  });
  after(() => removeDaemonNamespace(daemon, CONFIG, NS, STATE));

  it('ready says converged=false; the refused uplink\'s line and --json name the kernel\'s reason', async () => {
    daemon = await startDaemon(NS, CONFIG);
    const ready = await waitForLine(daemon, /event=ready/, 20_000);
    const status = await uplinkd(NS, ['status', '-c', CONFIG]);
    assert.match(ready, /converged=false failed=[1-9]/, status.stdout);
    const text = await uplinkd(NS, ['status', '-c', CONFIG]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^isp1 .*refused: EINVAL .*gateway/m);
    assert.doesNotMatch(text.stdout, /^isp2 .*refused/m);
    const json = JSON.parse((await uplinkd(NS, ['status', '--json', '-c', CONFIG])).stdout) as { uplinks: { name: string; refused?: string[] }[] };
    assert.match(json.uplinks.find((u) => u.name === 'isp1')!.refused!.join(), /^EINVAL .*gateway/);
    assert.equal(json.uplinks.find((u) => u.name === 'isp2')!.refused, undefined);
  });
});
