// Run INSIDE the full-kernel guest (test/lab/guest.test.ts boots it): the system clock stepped while the daemon
// runs, as NTP's first sync does on a board without an RTC, chrony's makestep, or `date -s`. Only the guest has a
// clock of its own to step (the host's is never touched). The health monitor and the daemon measure spans on the
// monotonic clock (src/system/clock.ts): after a step back of an hour, a dead upstream is still found and a cycle
// still runs; after a step forward, nothing is judged down; status keeps showing wall-clock times.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, sleep, waitFor } from '../../lab/exec';
import { blackholeUpstream, restoreUpstream } from '../../lab/faults';
import { addSecondTarget, daemonStatus, defaultMembers, healthDaemonConfig, startMonitoredDaemon, waitForDefault, waitForVerdict } from '../../lab/health';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { freshLab, NEEDS_ROOT } from '../lab/support';

const PREFIX = `uk${process.pid % 1000}c-`;
const UP_MS = 60_000;
/** How far the clock is stepped, each way. */
const STEP_S = 3600;
/** Default monitoring finds a dead upstream within a few seconds (docs/health.md); an hour-long stall is the fault. */
const VERDICT_MS = 30_000;

describe('the system clock stepped under a running daemon (guest only: its clock is its own)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let daemon: RunningDaemon | undefined;
  let socket: string;
  /** Seconds the guest's clock was moved in all, put back in after(). */
  let stepped = 0;

  const stepClock = async (seconds: number) => {
    const target = Math.round(Date.now() / 1000) + seconds;
    await inNs(lab.ns.router, 'date', ['-u', '-s', `@${target}`]);
    stepped += seconds;
  };
  /** Status's wall-clock times are near this process's wall clock (both read the stepped system clock). */
  const assertWallTimes = async (what: string) => {
    const s = await daemonStatus(socket);
    const now = Date.now();
    const since = s.health.isp1!.since;
    assert.ok(since <= now + 1_000 && now - since < 10 * 60_000, `${what}: isp1's health since ${new Date(since).toISOString()}, the clock says ${new Date(now).toISOString()}`);
    const cycleAt = Date.parse(s.lastCycle!.at);
    assert.ok(Math.abs(now - cycleAt) < 10 * 60_000, `${what}: the last cycle at ${s.lastCycle!.at}, the clock says ${new Date(now).toISOString()}`);
  };
  /** A rule of uplinkd's deleted by hand comes back on its notification (within seconds, not an hour later). */
  const ownRuleRestored = async () => {
    // Sorted: rules of one priority are listed in the order they were added.
    const rules = async () => (await inNs(lab.ns.router, 'ip', ['rule', 'show', 'priority', '10100'])).stdout.trim().split('\n').sort().join('\n');
    const before = await rules();
    assert.notEqual(before, '', 'a rule of uplinkd at priority 10100');
    await inNs(lab.ns.router, 'ip', ['rule', 'del', 'priority', '10100']);
    await waitFor('the deleted rule back', async () => ((await rules()) === before ? true : undefined), 10_000, 20);
  };
  /** Blackholes isp1's upstream until the daemon judges it down and takes it out of the default; then repairs it. */
  const deadUpstreamFound = async () => {
    const from = daemon!.lines.length;
    await blackholeUpstream(lab, 'isp1');
    try {
      await waitForVerdict(socket, 'isp1', 'down', VERDICT_MS);
      await waitForDefault(lab, ['isp2'], VERDICT_MS);
    } finally {
      await restoreUpstream(lab, 'isp1');
    }
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
    return daemon!.lines.slice(from).filter((l) => /event=health uplink=isp1 /.test(l));
  };

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    await addSecondTarget(lab);
    socket = path.join(lab.stateDir, 'control.sock');
    const config = path.join(lab.stateDir, 'clock.yaml');
    daemon = await startMonitoredDaemon(lab, socket, config, healthDaemonConfig(lab, socket), UP_MS, 'debug');
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
  });
  after(async () => {
    if (stepped !== 0 && lab) await stepClock(-stepped).catch(() => undefined);
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it(`clock stepped back ${STEP_S} s: a rule deleted by hand comes back, probing goes on, a dead upstream behind isp1 is judged down and leaves the default, and comes back; status shows the new wall-clock times`, async () => {
    await stepClock(-STEP_S);
    // Nothing is judged on the step itself.
    await sleep(3_000);
    assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2']);
    await ownRuleRestored();
    const lines = await deadUpstreamFound();
    assert.ok(lines.some((l) => /to=down/.test(l)), lines.join('\n'));
    await assertWallTimes('after the step back');
  });

  it(`clock stepped forward ${2 * STEP_S} s: no uplink is judged down for it, a change still starts a cycle, a dead upstream is still found`, async () => {
    const from = daemon!.lines.length;
    await stepClock(2 * STEP_S);
    await sleep(5_000);
    const downs = daemon!.lines.slice(from).filter((l) => /event=health uplink=\S+ .*to=down/.test(l));
    assert.deepEqual(downs, [], 'the step itself is no silence');
    assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2']);
    await ownRuleRestored();
    await deadUpstreamFound();
    await assertWallTimes('after the step forward');
  });
});
