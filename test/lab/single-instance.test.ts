// One daemon per routing protocol per network namespace (src/daemon/instance-lock.ts), whatever happens to the
// control socket's file or which config a second daemon is given; and a daemon whose config file was removed stays
// reachable by the CLI through its socket record. Real daemons in a namespace of their own.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, stopDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { LAB_RUNTIME_DIR, waitFor } from '../../lab/exec';
import { rules, uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { recordPath } from '../../src/daemon/socket-record';
import { NEEDS_ROOT, removeNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `m9${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = stateDirOf(PREFIX);

function configText(name: string, weight = 1): string {
  return [
    'uplinks:',
    '  - {name: isp1, interface: up1, address: 10.82.1.2/24, gateway: 10.82.1.1, weight: 1}',
    `  - {name: isp2, interface: up2, address: 10.82.2.2/24, gateway: 10.82.2.1, weight: ${weight}}`,
    ...statePaths(STATE, `${STATE}/${name}.sock`),
    '',
  ].join('\n');
}

/** Runs `uplinkd run -c config` expecting a refusal: its exit code and log. */
async function refusedStart(config: string): Promise<{ code: number | null; stderr: string }> {
  const r = await uplinkd(NS, ['run', '-c', config]);
  return { code: r.code, stderr: r.stderr };
}

describe('one daemon per protocol and namespace; a removed config file does not hide the daemon', { skip: NEEDS_ROOT }, () => {
  let first: RunningDaemon | undefined;
  let second: RunningDaemon | undefined;
  const a = path.join(STATE, 'a.yaml');
  const b = path.join(STATE, 'b.yaml');
  before(async () => {
    await vethNamespace(NS, STATE, [['up1', '10.82.1.2/24'], ['up2', '10.82.2.2/24']]);
    await fs.writeFile(a, configText('a'));
    await fs.writeFile(b, configText('b', 3));
    first = await startDaemon(NS, a);
  });
  after(async () => {
    for (const d of [first, second]) if (d) await stopDaemon(d, 'SIGKILL');
    for (const f of [a, b]) await fs.rm(recordPath(LAB_RUNTIME_DIR, f), { force: true });
    await removeNamespace(NS, STATE);
  });

  it('a second daemon is refused, naming the first, even with its control socket file removed or another config', async () => {
    await fs.rm(path.join(STATE, 'a.sock'));
    const pid = first!.child.pid;
    for (const config of [a, b]) {
      const r = await refusedStart(config);
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`another uplinkd \\(pid ${pid}\\) manages routing protocol 117 in this network namespace`));
    }
    // The refused daemons touched nothing: the balanced rule still leads to the first one's table.
    assert.ok((await rules(NS)).some((r) => r.priority === 10300 && r.table === '1000'), 'the first daemon\'s rules are in place');
    assert.equal(first!.child.exitCode, null, 'the first daemon still runs');
  });

  it('the config file removed: status, hook and reload still reach the daemon; reload is refused and state kept', async () => {
    // The control socket file went in the test before; a fresh daemon for this one.
    await stopDaemon(first!, 'SIGTERM');
    first = await startDaemon(NS, a);
    const moved = `${a}.gone`;
    await fs.rename(a, moved);
    try {
      const status = await uplinkd(NS, ['status', '-c', a]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`^daemon: running \\(pid ${first!.child.pid},`, 'm'));
      const hook = await uplinkd(NS, ['hook', '-c', a, '--cause', 'file-gone']);
      assert.equal(hook.code, 0, hook.stderr);
      const reload = await uplinkd(NS, ['reload', '-c', a]);
      assert.notEqual(reload.code, 0, reload.stdout);
      await waitForLine(first!, /event=reload-rejected/, 10_000);
      assert.equal(first!.child.exitCode, null);
    } finally {
      await fs.rename(moved, a);
    }
  });

  it('down with another file (another control socket) is refused while the daemon runs, naming it; apply warns; --force removes', async () => {
    const c = path.join(STATE, 'c.yaml');
    await fs.writeFile(c, configText('c'));
    const pid = first!.child.pid;
    const refused = await uplinkd(NS, ['down', '-c', c]);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, new RegExp(`another uplinkd \\(pid ${pid}\\) manages routing protocol 117 in this network namespace: it would restore what down removes`));
    assert.ok((await rules(NS)).some((r) => r.priority === 10300 && r.table === '1000'), 'nothing removed');
    const applied = await uplinkd(NS, ['apply', '-c', c]);
    assert.match(applied.stderr, new RegExp(`warning: another uplinkd \\(pid ${pid}\\) manages routing protocol 117`));
    const own = await uplinkd(NS, ['apply', '-c', a]);
    assert.doesNotMatch(own.stderr, /another uplinkd/, 'the daemon of this very file is no other');
    const forced = await uplinkd(NS, ['down', '--force', '-c', c]);
    assert.match(forced.stderr, /it will restore what down removes/);
    assert.equal(first!.child.exitCode, null, 'the daemon still runs');
    await waitFor('the daemon restores its rules', async () => ((await rules(NS)).some((r) => r.priority === 10300 && r.table === '1000') ? true : undefined), 10_000);
    await fs.rm(recordPath(LAB_RUNTIME_DIR, c), { force: true });
  });

  it('after the first daemon is killed (SIGKILL: no clean-up), a new one starts: the kernel released the lock', async () => {
    await stopDaemon(first!, 'SIGKILL');
    first = undefined;
    await fs.rm(recordPath(LAB_RUNTIME_DIR, a), { force: true });
    second = await startDaemon(NS, b);
    await waitFor('isp2 weight 3 in the group', async () => {
      const r = await uplinkd(NS, ['status', '--json', '-c', b]);
      if (r.code !== 0) return undefined;
      const { uplinks } = JSON.parse(r.stdout) as { uplinks: { name: string; weight: number }[] };
      return uplinks.find((u) => u.name === 'isp2')?.weight === 3 ? true : undefined;
    }, 10_000);
  });
});
