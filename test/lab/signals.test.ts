// `uplinkd run` handles its signals from its first instant: a SIGHUP that arrives while it is still
// loading, reading its file and converging (a DHCP hook or `systemctl reload` early at boot) is
// queued as a reload, not the end of the daemon. Real daemon process in a namespace of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { labEnv, nsArgv } from '../../lab/exec';
import { UPLINKD_BIN } from '../../lab/inspect';
import { NEEDS_ROOT, oneUplinkNamespace } from './support';

const NS = `up1${process.pid % 1000}-sig`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

function removeNs(): void {
  try { ip('netns', 'del', NS); } catch { /* not there */ }
}

/** Whether `pid` has a handler for signal `n` (SigCgt in /proc/PID/status). */
function catches(pid: number, n: number): boolean {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('SigCgt:'));
    return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & (1n << BigInt(n - 1))) !== 0n;
  } catch {
    return false;
  }
}

test('a SIGHUP right at start, before ready, is queued as a reload; the daemon lives on and stops cleanly on SIGTERM', { skip: NEEDS_ROOT }, async () => {
  removeNs();
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-signals-'));
  try {
    const config = oneUplinkNamespace(NS, dir);
    const child = spawn('ip', nsArgv(NS, process.execPath, [UPLINKD_BIN, 'run', '-c', config]), { stdio: ['ignore', 'ignore', 'pipe'], env: labEnv() });
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { log += d; });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // The earliest a SIGHUP can be handled at all is when the process has a handler: send it then,
      // and keep sending until the daemon is ready.
      const deadline = Date.now() + 20_000;
      while (!catches(child.pid!, 1)) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `no SIGHUP handler appeared:\n${log}`);
        await new Promise((r) => setTimeout(r, 1));
      }
      let sent = 0;
      while (!/event=ready/.test(log)) {
        assert.ok(Date.now() < deadline, `not ready:\n${log}`);
        assert.equal(child.exitCode, null, `the daemon died after ${sent} SIGHUP(s):\n${log}`);
        child.kill('SIGHUP');
        sent++;
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(sent > 0);
      assert.match(log, /event=signal.*signal=SIGHUP.*before ready: reload queued/, 'a SIGHUP arrived before ready and was queued');
      // The queued reload runs once started.
      for (const end = Date.now() + 10_000; !/event=reload /.test(log) && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
      assert.match(log, /event=reload /);
      assert.equal(child.exitCode, null, 'still running');
      assert.ok(ip('-n', NS, 'rule', 'show').toString().includes('from 198.51.100.2 lookup'), 'and it did its work');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, log);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  } finally {
    removeNs();
    rmSync(dir, { recursive: true, force: true });
  }
});
