// A fast link flap (B4): the kernel flushing routes and nexthops on link down is not another
// program's drift. `ip link set if2 down; up` 50 times on a real veth under a running daemon:
// no conflict warning, no apply-failed, and uplinkd's objects converge back with traffic flowing.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryDaemon } from '../../src/daemon/control-client';
import type { DaemonStatus } from '../../src/daemon/daemon';
import { daemonConfig, startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, ipIn, waitFor } from '../../lab/exec';
import { routingState } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { ping } from '../../lab/traffic';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `f8b${process.pid % 1000}-`;

describe('link flaps under a running daemon (B4)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let daemon: RunningDaemon | undefined;
  let socket: string;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'static' });
    socket = path.join(lab.stateDir, 'control.sock');
    const config = path.join(lab.stateDir, 'daemon.yaml');
    await fs.writeFile(config, daemonConfig(lab, socket));
    daemon = await startDaemon(lab.ns.router, config);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('50 fast down/up flaps of if2: no event=conflict, no apply-failed, converges to the same objects, traffic flows', async () => {
    await settled(lab);
    const before = owned(await routingState(lab.ns.router));
    assert.ok(before.nexthops.length > 0 && before.routes.length > 0, 'uplinkd made nexthops and routes');
    // As `for i in $(seq 50); do ip link set if2 down; ip link set if2 up; done`, with a pause now and then so the
    // daemon runs cycles between flaps (restoring the same objects many times inside the conflict window).
    for (let i = 0; i < 50; i++) {
      await ipIn(lab.ns.router, ['link', 'set', 'if2', 'down']);
      await ipIn(lab.ns.router, ['link', 'set', 'if2', 'up']);
      if (i % 2 === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor('the flushed objects back', async () => (JSON.stringify(owned(await routingState(lab.ns.router))) === JSON.stringify(before) ? true : undefined), 20_000, 100);
    await settled(lab);
    assert.deepEqual(owned(await routingState(lab.ns.router)), before);
    const lines = daemon!.lines;
    assert.deepEqual(lines.filter((l) => /event=conflict/.test(l)), []);
    assert.deepEqual(lines.filter((l) => /event=apply-failed/.test(l)), []);
    assert.ok(lines.some((l) => /event=apply /.test(l) && /link/.test(l)), 'restorations were made after link events');
    const isp2 = lab.uplinks.find((u) => u.name === 'isp2')!.address;
    assert.equal(await ping(lab.ns.inet, isp2, { count: 2, waitSec: 1 }), true, `ping ${isp2} from the internet host`);
  });

  it('after `nft delete table ip uplinkd`, status reports a check made after the deletion (its notification re-reads the table), never the one before (B1)', async () => {
    const before = (await queryDaemon(socket, { cmd: 'status' })) as DaemonStatus;
    const m = /^flow pinning: in place at the last check (\d\d:\d\d:\d\d UTC) \(changes followed by nftables notifications\)/.exec(before.pinning);
    assert.ok(m, before.pinning);
    // A second later, so that a new check shows another time.
    await new Promise((r) => setTimeout(r, 1_100));
    await inNs(lab.ns.router, 'nft', ['delete', 'table', 'ip', 'uplinkd']);
    const after = await waitFor('a new check of the table', async () => {
      const s = (await queryDaemon(socket, { cmd: 'status' })) as DaemonStatus;
      return s.pinning.includes(`at the last check ${m[1]}`) ? undefined : s;
    }, 10_000, 50);
    assert.match(after.pinning, /^flow pinning: in place at the last check \d\d:\d\d:\d\d UTC/);
    assert.ok((await inNs(lab.ns.router, 'nft', ['list', 'tables'])).stdout.includes('table ip uplinkd'), 'and it is in place');
  });
});

type State = Awaited<ReturnType<typeof routingState>>;

/** uplinkd's rules, routes and nexthops only (protocol 117), sorted. */
function owned(s: State): State {
  const mine = (o: unknown) => String((o as { protocol?: unknown }).protocol) === '117';
  const sorted = (xs: unknown[]) => xs.filter(mine).map((x) => JSON.stringify(x)).sort();
  return { rules: sorted(s.rules), routes: sorted(s.routes), nexthops: sorted(s.nexthops) };
}

/** Waits until two reads of the routing state a little apart are equal (the daemon is idle). */
async function settled(lab: LabInfo): Promise<void> {
  let last = JSON.stringify(await routingState(lab.ns.router));
  await waitFor('routing to settle', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const now = JSON.stringify(await routingState(lab.ns.router));
    const same = now === last;
    last = now;
    return same ? true : undefined;
  }, 10_000, 0);
}
