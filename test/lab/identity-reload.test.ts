// Issue 8, stable identities: TCP streams pinned to their uplinks keep flowing through daemon
// reloads that insert a new uplink at the top of the list and then reorder it. With identities
// from list positions the pinned marks would point at another uplink's table after the reload,
// and the streams' packets would leave through a provider that drops their source.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { sleep, waitFor } from '../../lab/exec';
import { kindsLabDown, kindsLabUp, writeKindsConfig, type KindUplink } from '../../lab/kinds';
import { openStream, startStreamServer, type Stream } from '../../lab/stream';
import { NEEDS_ROOT } from './support';

const PREFIX = `u8b${process.pid % 1000}-`;

const uplink = (n: number): KindUplink => ({
  name: `isp${n}`, routerIf: `eth${n}`, address: `10.1${n}.0.2`,
  router: [`addr add 10.1${n}.0.2/24 dev eth${n}`], provider: [`addr add 10.1${n}.0.1/24 dev cust`],
});
const yaml = (order: number[]): string => order.map((n) => `  - {name: isp${n}, interface: eth${n}, address: 10.1${n}.0.2/24, gateway: 10.1${n}.0.1}`).join('\n');
const EXTRA = 'daemon:\n  debounce: 5ms\n  resync_interval: 5s\n';

/** The stream carried data both ways during the last `ms` and is still open. */
async function flowing(s: Stream, ms: number): Promise<void> {
  const before = s.latest().received;
  await sleep(ms);
  assert.equal(s.end(), undefined, `the stream via ${s.peer} ended: ${JSON.stringify(s.end())}`);
  assert.ok(s.latest().received > before + 10_000, `the stream via ${s.peer} stalled: ${before} -> ${s.latest().received} bytes`);
}

describe('stable identities across reloads (issue 8)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  const streams: Stream[] = [];
  after(async () => {
    for (const s of streams) await s.stop();
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await kindsLabDown(PREFIX);
  });

  it('pinned TCP streams survive a reload that inserts an uplink at the top, and one that reorders', async (t) => {
    const lab = await kindsLabUp(PREFIX, [uplink(1), uplink(2), uplink(3)]);
    await startStreamServer(lab.ns.inet);
    const config = await writeKindsConfig(lab, 'uplinkd.yaml', yaml([1, 2]), EXTRA);
    daemon = await startDaemon(lab.ns.router, config);
    streams.push(await openStream(lab.ns.lan, lab.internetHost, '10.11.0.2'), await openStream(lab.ns.lan, lab.internetHost, '10.12.0.2'));
    for (const s of streams) await flowing(s, 1000);

    for (const [i, order] of [[3, 1, 2], [2, 3, 1]].entries()) {
      await writeKindsConfig(lab, 'uplinkd.yaml', yaml(order), EXTRA);
      const reloads = daemon.lines.filter((l) => /event=reload\b/.test(l)).length;
      daemon.child.kill('SIGHUP');
      const d = daemon;
      await waitFor('the reload', async () => (d.lines.filter((l) => /event=reload\b/.test(l)).length > reloads ? true : undefined), 10_000, 20);
      t.diagnostic(`reload ${i + 1}: uplinks ${order.map((n) => `isp${n}`).join(', ')}`);
      for (const s of streams) await flowing(s, 2000);
    }
    assert.ok(daemon.lines.some((l) => /event=apply .*eth3/.test(l)), 'the inserted uplink was not set up');
  });
});
