// `uplinkd status` (and `hook`, `reload`) with a daemon running find its control socket from the daemon's socket
// record (src/daemon/socket-record.ts) without loading the YAML parser, and only while the file holds the text
// the daemon's parser accepted: a file made invalid, or naming another socket, is parsed as before (same errors,
// same exit codes); a record left by a killed daemon costs only a failed connect; a stopped daemon removes it.
// A real daemon in a namespace of its own; real CLI processes, whose loaded modules NODE_DEBUG=module lists.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, stopDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { ipIn, LAB_RUNTIME_DIR, labEnv } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import { stateDirOf } from '../../lab/topology';
import { recordPath } from '../../src/daemon/socket-record';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `f8a${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = stateDirOf(PREFIX);
const CONFIG = path.join(STATE, 'uplinkd.yaml');

function configText(socket = path.join(STATE, 'control.sock'), weight = 1): string {
  return [
    'uplinks:',
    '  - {name: isp1, interface: up1, address: 10.81.1.2/24, gateway: 10.81.1.1, weight: 1}',
    `  - {name: isp2, interface: up2, address: 10.81.2.2/24, gateway: 10.81.2.1, weight: ${weight}}`,
    'lan: [lan0]',
    ...statePaths(STATE, socket),
    '',
  ].join('\n');
}

/** `uplinkd ARGS` in the router with NODE_DEBUG=module: its result and the files it loaded. */
async function traced(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; loaded: string[] }> {
  const r = await uplinkd(NS, args, { env: labEnv({ NODE_DEBUG: 'module' }) });
  const loaded = [...r.stderr.matchAll(/^MODULE \d+: load "([^"]+)"/gm)].map((m) => m[1]!);
  return { ...r, loaded };
}

/** What only parsing the file, planning or netlink needs: none of it may load when the record answers. */
const HEAVY = /node_modules\/yaml\/|\/config\/load\.js$|\/netlink\/|\/plan\/|\/nft\//;

/** Waits (generous bound) until the daemon's last cycle names `cause`: the nudge reached it. */
async function cycleCausedBy(cause: string): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const r = await uplinkd(NS, ['status', '--json', '-c', CONFIG]);
    const causes = (JSON.parse(r.stdout) as { lastCycle?: { causes: string[] } }).lastCycle?.causes ?? [];
    if (causes.includes(cause)) return;
  }
  assert.fail(`no cycle caused by ${cause}`);
}

describe('status from the socket record (issue 7)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    await vethNamespace(NS, STATE, [['up1', '10.81.1.2/24'], ['up2', '10.81.2.2/24'], ['lan0', '192.168.81.1/24']]);
    await fs.writeFile(CONFIG, configText());
    daemon = await startDaemon(NS, CONFIG);
  });
  after(() => removeDaemonNamespace(daemon, CONFIG, NS, STATE));

  it('answers from the daemon without loading the YAML parser, the planner, netlink or nftables', async () => {
    const text = await traced(['status', '-c', CONFIG]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^daemon: running \\(pid ${daemon!.child.pid},`, 'm'));
    assert.ok(text.loaded.some((f) => f.endsWith('/daemon/socket-record.js')), 'the record was read');
    assert.deepEqual(text.loaded.filter((f) => HEAVY.test(f)), []);
    const json = await traced(['status', '--json', '-c', CONFIG]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as { pid: number }).pid, daemon!.child.pid);
    assert.deepEqual(json.loaded.filter((f) => HEAVY.test(f)), []);
    const hook = await traced(['hook', '-c', CONFIG, '--cause', 'test']);
    assert.equal(hook.code, 0, hook.stderr);
    assert.deepEqual(hook.loaded.filter((f) => HEAVY.test(f)), []);
    const record = await fs.stat(recordPath(LAB_RUNTIME_DIR, CONFIG));
    assert.equal(record.mode & 0o777, 0o600);
  });

  it('a broken file does not cut the CLI off: status shows the daemon and the error, hook nudges, reload is rejected by the daemon (logged, exit 2)', async () => {
    const good = configText();
    const where = new RegExp(`${CONFIG.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: uplinks\\[0\\]\\.gateway: `);
    try {
      await fs.writeFile(CONFIG, good.replace('gateway: 10.81.1.1', 'gateway: 10.81.1.300'));
      const status = await uplinkd(NS, ['status', '-c', CONFIG]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`^daemon: running \\(pid ${daemon!.child.pid},`, 'm'));
      assert.match(status.stdout, /^warning: the file changed since the daemon loaded it and is not a valid configuration now: fix it, then `uplinkd reload`$/m);
      assert.match(status.stdout, where);
      assert.match(status.stdout, /the daemon keeps its last good configuration/);
      const json = await uplinkd(NS, ['status', '--json', '-c', CONFIG]);
      assert.equal(json.code, 0, json.stderr);
      const j = JSON.parse(json.stdout) as { pid: number; fileChanged?: boolean; fileNotes?: string[] };
      assert.equal(j.pid, daemon!.child.pid);
      assert.equal(j.fileChanged, true);
      assert.match(j.fileNotes![1]!, where);
      const hook = await uplinkd(NS, ['hook', '-c', CONFIG, '--cause', 'hook-broken-file']);
      assert.equal(hook.code, 0, hook.stderr);
      await cycleCausedBy('hook-broken-file');
      const reload = await uplinkd(NS, ['reload', '-c', CONFIG]);
      assert.equal(reload.code, 2, `${reload.stdout}${reload.stderr}`);
      assert.match(reload.stderr, where);
      await waitForLine(daemon!, /event=reload-rejected/, 10_000);
      assert.match((await uplinkd(NS, ['status', '-c', CONFIG])).stdout, /^daemon: running/m, 'still running its last good configuration');
    } finally {
      await fs.writeFile(CONFIG, good);
    }
    const back = await traced(['status', '-c', CONFIG]);
    assert.match(back.stdout, /^daemon: running/m);
    assert.doesNotMatch(back.stdout, /file changed/);
    assert.deepEqual(back.loaded.filter((f) => HEAVY.test(f)), [], 'the text the daemon adopted: no parsing');
  });

  it('an edited paths.control_socket: status, hook and reload still reach the daemon on the socket it listens on', async () => {
    const good = configText();
    try {
      await fs.writeFile(CONFIG, configText(path.join(STATE, 'other.sock')));
      const r = await uplinkd(NS, ['status', '--json', '-c', CONFIG]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { pid?: number }).pid, daemon!.child.pid);
      const hook = await uplinkd(NS, ['hook', '-c', CONFIG, '--cause', 'hook-other-socket']);
      assert.equal(hook.code, 0, hook.stderr);
      await cycleCausedBy('hook-other-socket');
      const reload = await uplinkd(NS, ['reload', '-c', CONFIG]);
      assert.equal(reload.code, 0, reload.stderr);
      assert.match(reload.stderr, /paths\.control_socket changed to .*other\.sock: the daemon keeps listening on .*control\.sock until it restarts/);
      await waitForLine(daemon!, /paths\.control_socket changed/, 10_000);
      // The record still names the socket the daemon listens on, though the adopted file names another.
      const again = await uplinkd(NS, ['status', '-c', CONFIG]);
      assert.match(again.stdout, /^daemon: running/m);
      assert.doesNotMatch(again.stdout, /file changed/);
    } finally {
      await fs.writeFile(CONFIG, good);
      await uplinkd(NS, ['reload', '-c', CONFIG]);
    }
  });

  it('down refuses while the daemon runs this config (exit 1, nothing removed); no daemon and no file says so', async () => {
    const rulesBefore = (await ipIn(NS, ['rule', 'show'])).stdout;
    const down = await uplinkd(NS, ['down', '-c', CONFIG]);
    assert.equal(down.code, 1, down.stdout);
    assert.match(down.stderr, /a daemon runs .*systemctl stop uplinkd.*--cleanup.*down --force/s);
    assert.equal((await ipIn(NS, ['rule', 'show'])).stdout, rulesBefore, 'down removed nothing');
    assert.match(rulesBefore, /from 10\.81\.1\.2 /, 'the daemon had made its rules');
    const none = await uplinkd(NS, ['reload', '-c', path.join(STATE, 'no-such.yaml')]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no daemon: none runs .*no-such\.yaml, and there is no such file/);
  });

  it('after a reload the record holds the new text: status answers from it again', async () => {
    await fs.writeFile(CONFIG, configText(undefined, 3));
    const before_ = await traced(['status', '-c', CONFIG]);
    assert.match(before_.stdout, /^daemon: running/m, 'the daemon, found from its record');
    assert.ok(before_.loaded.some((f) => /node_modules\/yaml\//.test(f)), 'the edited file differs from the record: parsed');
    const r = await uplinkd(NS, ['reload', '-c', CONFIG]);
    assert.equal(r.code, 0, r.stderr);
    const after_ = await traced(['status', '-c', CONFIG]);
    assert.match(after_.stdout, /isp2 .*weight 3/);
    assert.deepEqual(after_.loaded.filter((f) => HEAVY.test(f)), []);
  });

  it('a record left by a killed daemon costs a failed connect only; a stopped daemon removes its record', async () => {
    await stopDaemon(daemon!, 'SIGKILL');
    daemon = undefined;
    await fs.access(recordPath(LAB_RUNTIME_DIR, CONFIG)); // kill -9: nothing removed it
    const stale = await uplinkd(NS, ['status', '--json', '-c', CONFIG]);
    assert.equal(stale.code, 0, stale.stderr);
    assert.equal((JSON.parse(stale.stdout) as { daemon?: boolean }).daemon, false);
    daemon = await startDaemon(NS, CONFIG);
    assert.match((await uplinkd(NS, ['status', '-c', CONFIG])).stdout, /^daemon: running/m);
    await stopDaemon(daemon, 'SIGTERM');
    daemon = undefined;
    await assert.rejects(fs.access(recordPath(LAB_RUNTIME_DIR, CONFIG)), { code: 'ENOENT' });
  });

  it('lab down removes the record a killed lab daemon left (and no one else\'s)', async () => {
    const other = recordPath(LAB_RUNTIME_DIR, `${STATE}-other/uplinkd.yaml`);
    await fs.mkdir(path.dirname(other), { recursive: true, mode: 0o700 });
    await fs.writeFile(other, '{}\n', { mode: 0o600 });
    try {
      daemon = await startDaemon(NS, CONFIG);
      await stopDaemon(daemon, 'SIGKILL');
      daemon = undefined;
      await fs.access(recordPath(LAB_RUNTIME_DIR, CONFIG));
      await labDown(PREFIX);
      await assert.rejects(fs.access(recordPath(LAB_RUNTIME_DIR, CONFIG)), { code: 'ENOENT' });
      await fs.access(other); // a path that only begins like the lab's state directory
    } finally {
      await fs.rm(other, { force: true });
    }
  });
});
