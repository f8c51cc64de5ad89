// Two lab worlds side by side (as the guest runs its blog and PPPoE worlds), each with a daemon
// started from the config the lab generated: both run, each on its own control socket, and each
// routes real traffic from the internet host to its uplink addresses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { ping } from '../../lab/traffic';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIXES = [`rb${process.pid % 1000}a-`, `rb${process.pid % 1000}b-`];

test('two lab worlds each run a daemon from their generated config, on their own control socket', { skip: NEEDS_ROOT }, async (t) => {
  const labs: LabInfo[] = [];
  const daemons: RunningDaemon[] = [];
  try {
    for (const prefix of PREFIXES) labs.push(await freshLab({ prefix, isp1: 'static', isp2: 'static' }));
    for (const lab of labs) daemons.push(await startDaemon(lab.ns.router, lab.configPath));
    for (const [i, lab] of labs.entries()) {
      assert.equal(daemons[i]!.child.exitCode, null, `the daemon of ${lab.prefix} runs:\n${daemons[i]!.lines.join('\n')}`);
      // `uplinkd status` with the world's config reaches that world's daemon.
      const r = await uplinkd(lab.ns.router, ['status', '--json', '-c', lab.configPath]);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(JSON.parse(r.stdout).daemon, false, `${lab.prefix}: status answered without a daemon:\n${r.stdout}`);
      for (const u of lab.uplinks) {
        assert.ok(await ping(lab.ns.inet, u.address, { count: 2, waitSec: 1 }), `${lab.prefix}: ping ${u.address} (${u.name})`);
      }
    }
  } finally {
    for (const d of daemons) await stopDaemon(d, 'SIGTERM').catch((e: unknown) => t.diagnostic(String(e)));
    for (const prefix of PREFIXES) await labDown(prefix);
  }
});
