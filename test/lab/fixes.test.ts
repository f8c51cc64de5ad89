// Faults a fresh user test found (s10). (1) Foreign `not` rules and suppress_prefixlength rules before uplinkd's
// band, judged by what the kernel really does: a router namespace with one uplink whose gateway (198.51.100.1) lives
// in a peer namespace; real pings with a pinning mark show where the kernel sends them. (2) A real daemon and CLI:
// finding the daemon of a file that became a dangling symlink or a loop, a re-pointed symlink, another file naming
// the same socket, what a reload answers, and name files left at moved paths.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as path from 'node:path';
import { inNs, ipIn, ipJson, LAB_RUNTIME_DIR, run } from '../../lab/exec';
import { recordPath } from '../../src/daemon/socket-record';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeNamespace, statePaths, vethNamespace } from './support';
import { promises as fs } from 'node:fs';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';

const PREFIX = `u10f${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const PEER = `${PREFIX}p`;
const STATE = `${stateDirOf(PREFIX)}r`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');

const TEXT = [
  'uplinks:',
  '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1}',
  ...statePaths(STATE),
  '',
].join('\n');

/** Whether 3 pings from the router with packet mark `mark` (SO_MARK) reach the gateway in the peer namespace. */
async function pingWithMark(mark: number): Promise<boolean> {
  const r = await inNs(NS, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', '-m', String(mark), '198.51.100.1'], { allowFail: true });
  return r.code === 0;
}

describe('foreign rules before uplinkd\'s band', { skip: NEEDS_ROOT }, () => {
  let pinMark = 0;
  before(async () => {
    await run('ip', ['netns', 'del', PEER], { allowFail: true });
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24']]);
    await run('ip', ['netns', 'add', PEER]);
    await ipIn(NS, ['link', 'set', 'wan0p', 'netns', PEER]);
    await ipIn(PEER, ['addr', 'add', '198.51.100.1/24', 'dev', 'wan0p']);
    await ipIn(PEER, ['link', 'set', 'wan0p', 'up']);
    await ipIn(PEER, ['link', 'set', 'lo', 'up']);
    await fs.writeFile(CONFIG, TEXT);
    const applied = await uplinkd(NS, ['apply', '-c', CONFIG]);
    assert.equal(applied.code, 0, applied.stderr);
    const pinned = (await ipJson<{ fwmark?: string; protocol?: string }>(NS, ['rule', 'show'])).find((r) => r.fwmark !== undefined);
    assert.ok(pinned, 'no pinning rule');
    pinMark = Number(pinned.fwmark);
  });
  after(async () => {
    await run('ip', ['netns', 'del', PEER], { allowFail: true });
    await removeNamespace(NS, STATE);
  });

  it('`not fwmark 51820 lookup 51820` at 10049 takes the pinned packets, and plan says it shadows flow pinning', async () => {
    assert.ok(await pingWithMark(pinMark), 'a pinned ping should reach the gateway before the foreign rule');
    await ipIn(NS, ['route', 'add', 'unreachable', 'default', 'table', '51820']);
    await ipIn(NS, ['rule', 'add', 'not', 'fwmark', '51820', 'table', '51820', 'priority', '10049']);
    try {
      // The kernel: a packet with the pinning mark lacks mark 51820, so the `not` rule sends it to table 51820.
      assert.equal(await pingWithMark(pinMark), false, 'the not rule should take pinned packets');
      assert.ok(await pingWithMark(51820), 'a packet with mark 51820 passes the not rule');
      const plan = await uplinkd(NS, ['plan', '-c', CONFIG]);
      const text = plan.stdout + plan.stderr;
      const line = text.split('\n').find((l) => l.includes("admin rule 'not from all fwmark 0xca6c")) ?? '';
      assert.match(line, /a `not` rule: it matches every packet its selectors do not/, text);
      assert.match(line, /port-forward replies and established connections it matches leave by table 51820/);
      assert.match(line, /shadows pinning/);
      assert.doesNotMatch(line, /matches none of their packets/);
    } finally {
      await ipIn(NS, ['rule', 'del', 'priority', '10049'], { allowFail: true });
      await ipIn(NS, ['route', 'del', 'unreachable', 'default', 'table', '51820'], { allowFail: true });
    }
  });

  it('`lookup main suppress_prefixlength 0` at 10048 gets a message that says what it lets through', async () => {
    await ipIn(NS, ['rule', 'add', 'table', 'main', 'suppress_prefixlength', '0', 'priority', '10048']);
    try {
      // Main's connected route (/24, longer than /0) still decides for the gateway: the pinned ping gets there.
      assert.ok(await pingWithMark(pinMark));
      const plan = await uplinkd(NS, ['plan', '-c', CONFIG]);
      const line = (plan.stdout + plan.stderr).split('\n').find((l) => l.includes('suppress_prefixlength 0 priority 10048')) ?? '';
      assert.match(line, /admin rule '[^']+': \S/);
      assert.match(line, /longer than \/0 \(suppress_prefixlength 0 lets the others through\)/);
    } finally {
      await ipIn(NS, ['rule', 'del', 'priority', '10048'], { allowFail: true });
    }
  });
});

describe('the CLI and the daemon that runs a file', { skip: NEEDS_ROOT }, () => {
  const NS2 = `${PREFIX}d`;
  const DIR = `${stateDirOf(PREFIX)}d`;
  const text = (extra: string): string => TEXT.replaceAll(STATE, DIR) + extra;
  let daemon: RunningDaemon | undefined;
  before(async () => {
    // wan1's /25 makes 203.0.113.127 its broadcast address: the kernel refuses a nexthop through it.
    await vethNamespace(NS2, DIR, [['wan0', '198.51.100.2/24'], ['wan1', '203.0.113.2/25']]);
  });
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await removeNamespace(NS2, DIR);
  });
  const cli = (args: string[]) => uplinkd(NS2, args);

  it('finds its daemon when the file became a dangling symlink or a symlink loop (reload, hook, status)', async () => {
    const file = path.join(DIR, 'uplinkd.yaml');
    await fs.writeFile(file, text(''));
    daemon = await startDaemon(NS2, file);
    try {
      for (const make of [
        async () => fs.symlink('/nonexistent-u10f', file),
        async () => { await fs.symlink(path.join(DIR, 'loop.yaml'), file); await fs.symlink(file, path.join(DIR, 'loop.yaml')); },
      ]) {
        await fs.rm(file);
        await fs.rm(path.join(DIR, 'loop.yaml'), { force: true });
        await make();
        const hook = await cli(['hook', '-c', file]);
        assert.equal(hook.code, 0, hook.stderr);
        const status = await cli(['status', '-c', file]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /is not a valid configuration now/);
        // The daemon is reached and refuses the file it cannot read (exit 2), keeping its state.
        const reload = await cli(['reload', '-c', file]);
        assert.doesNotMatch(reload.stderr, /no daemon/);
        assert.equal(reload.code, 2, reload.stderr + reload.stdout);
      }
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
      daemon = undefined;
    }
  });

  it('says when a symlinked file was re-pointed since the daemon loaded it, and when another file names its socket', async () => {
    const cfg = path.join(DIR, 'cfg.yaml');
    const v1 = path.join(DIR, 'v1.yaml');
    const v2 = path.join(DIR, 'v2.yaml');
    const other = path.join(DIR, 'other.yaml');
    await fs.rm(cfg, { force: true });
    await fs.writeFile(v1, text('daemon: {resync_interval: 7s}\n'));
    await fs.writeFile(v2, text('daemon: {resync_interval: 9s}\n'));
    await fs.writeFile(other, text('daemon: {resync_interval: 11s}\n'));
    await fs.symlink(v2, cfg);
    daemon = await startDaemon(NS2, cfg);
    const plain = await cli(['status', '--json', '-c', cfg]);
    assert.equal((JSON.parse(plain.stdout) as { fileChanged?: boolean }).fileChanged, undefined);
    // ln -sfn + mv -T: cfg.yaml now leads to v1.yaml.
    await fs.symlink(v1, `${cfg}.new`);
    await fs.rename(`${cfg}.new`, cfg);
    const status = await cli(['status', '-c', cfg]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /the file changed since the daemon loaded it/);
    assert.match(status.stdout, /now leads to .*v1\.yaml, not to .*v2\.yaml/);
    const json = JSON.parse((await cli(['status', '--json', '-c', cfg])).stdout) as { fileChanged?: boolean; configRealPath?: string };
    assert.equal(json.fileChanged, true);
    assert.equal(json.configRealPath, await fs.realpath(v2));
    // Without its record (an unwritable runtime directory), the daemon reached through the socket the file names
    // still says it was started with that name: the same notes.
    const record = recordPath(LAB_RUNTIME_DIR, await fs.realpath(v2));
    const saved = await fs.readFile(record);
    await fs.rm(record);
    try {
      const bare = await cli(['status', '-c', cfg]);
      assert.match(bare.stdout, /now leads to .*v1\.yaml, not to .*v2\.yaml.*\n.*the file changed since the daemon loaded it/);
    } finally {
      await fs.writeFile(record, saved, { mode: 0o600 });
    }
    // Another file naming the same socket: not this daemon's file.
    const foreign = await cli(['status', '-c', other]);
    assert.equal(foreign.code, 0, foreign.stderr);
    assert.match(foreign.stderr, /runs .*cfg\.yaml .*v2\.yaml.*, not .*other\.yaml: it is not this file's daemon/);
    const foreignJson = JSON.parse((await cli(['status', '--json', '-c', other])).stdout) as { daemon?: boolean; otherDaemon?: string };
    assert.equal(foreignJson.daemon, false);
    assert.match(foreignJson.otherDaemon ?? '', /not .*other\.yaml/);
    const reloadOther = await cli(['reload', '-c', other]);
    assert.equal(reloadOther.code, 1);
    assert.match(reloadOther.stderr, /it is not this file's daemon/);
    const downOther = await cli(['down', '-c', other]);
    assert.equal(downOther.code, 1);
    assert.match(downOther.stderr, /runs .*cfg\.yaml .*, not .*other\.yaml: it is not this file's daemon, but it manages this namespace's routing: it would restore/);
    // Reloading the re-pointed name adopts v1: no note any more.
    const reload = await cli(['reload', '-c', cfg]);
    assert.equal(reload.code, 0, reload.stderr);
    const after = JSON.parse((await cli(['status', '--json', '-c', cfg])).stdout) as { fileChanged?: boolean; configRealPath?: string };
    assert.equal(after.fileChanged, undefined);
    assert.equal(after.configRealPath, await fs.realpath(v1));
    await stopDaemon(daemon, 'SIGTERM');
    daemon = undefined;
  });

  it('a reload says whether its first cycle applied the file; name files left at moved paths are removed (reload, apply, down)', async () => {
    const file = path.join(DIR, 'names.yaml');
    const at = (sub: string): string => text('').replace(`${DIR}/rt_tables.conf`, `${DIR}/${sub}/tables.conf`).replace(`${DIR}/rt_protos.conf`, `${DIR}/${sub}/protos.conf`);
    await fs.writeFile(file, at('a'));
    daemon = await startDaemon(NS2, file);
    try {
      assert.match(await fs.readFile(`${DIR}/a/tables.conf`, 'utf8'), /isp1/);
      await fs.writeFile(file, at('b'));
      const moved = await cli(['reload', '-c', file]);
      assert.equal(moved.code, 0, moved.stderr);
      assert.match(moved.stdout, /configuration reloaded and applied \(\d+ changes?\)/);
      await fs.access(`${DIR}/b/tables.conf`);
      await fs.access(`${DIR}/b/protos.conf`);
      await assert.rejects(fs.access(`${DIR}/a/tables.conf`), 'the old rt_tables file is removed');
      await assert.rejects(fs.access(`${DIR}/a/protos.conf`), 'the old rt_protos file is removed');
      // A second uplink whose gateway the kernel refuses (wan1's broadcast address): accepted, not applied.
      await fs.writeFile(file, at('b').replace('paths:', '  - {name: isp2, interface: wan1, address: 203.0.113.2/24, gateway: 203.0.113.127}\npaths:'));
      const refused = await cli(['reload', '-c', file]);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stdout, /configuration reloaded, but \d+ of \d+ changes? failed in the first cycle with it; the daemon runs the new configuration and retries/);
      // Down removes the current name files; nothing of uplinkd's is left under a/ or b/.
      await stopDaemon(daemon, 'SIGTERM');
      daemon = undefined;
      const down = await cli(['down', '-c', file]);
      assert.equal(down.code, 0, down.stderr);
      await assert.rejects(fs.access(`${DIR}/b/tables.conf`));
      await assert.rejects(fs.access(`${DIR}/a`));
      // One-shot runs remember what they wrote for this file: apply at a/, apply at c/, down at d/ leave nothing.
      await fs.writeFile(file, at('a'));
      assert.equal((await cli(['apply', '-c', file])).code, 0);
      await fs.access(`${DIR}/a/tables.conf`);
      await fs.writeFile(file, at('c'));
      assert.equal((await cli(['apply', '-c', file])).code, 0);
      await assert.rejects(fs.access(`${DIR}/a`), 'apply at new paths removes the old name files');
      await fs.access(`${DIR}/c/tables.conf`);
      await fs.writeFile(file, at('d'));
      assert.equal((await cli(['down', '-c', file])).code, 0);
      await assert.rejects(fs.access(`${DIR}/c`), 'down removes the files written at earlier paths');
    } finally {
      if (daemon) await stopDaemon(daemon, 'SIGTERM');
      daemon = undefined;
    }
  });
});
