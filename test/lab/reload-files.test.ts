// Files the daemon reads are never allowed to hang it: a config path that became a FIFO on
// SIGHUP, or a FIFO matching the lease glob, is refused with a clear reason while the daemon keeps
// its last good state, and SIGTERM still ends it. A config of random bytes is rejected with a log
// line of plain text (no raw ESC/CR/NUL/BS). Real daemon process in a namespace of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { labEnv, nsArgv } from '../../lab/exec';
import { UPLINKD_BIN } from '../../lab/inspect';
import { NEEDS_ROOT, oneUplinkNamespace } from './support';

const NS = `rb${process.pid % 1000}-rel`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

function removeNs(): void {
  try { ip('netns', 'del', NS); } catch { /* not there */ }
}

async function until(what: string, done: () => boolean, log: () => string, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; !done();) {
    assert.ok(Date.now() < end, `${what} did not happen within ${ms} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a FIFO as config on SIGHUP or as a lease file, or random bytes as config, are refused with the reason in plain text; state is kept; SIGTERM ends the daemon', { skip: NEEDS_ROOT }, async () => {
  removeNs();
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-rb-files-'));
  try {
    mkdirSync(path.join(dir, 'leases'));
    // A FIFO where a lease file is expected: a blocking read would stall the first cycle forever.
    execFileSync('mkfifo', [path.join(dir, 'leases', 'wan0.lease')]);
    const config = oneUplinkNamespace(NS, dir, [path.join(dir, 'leases', '*.lease')]);
    const child = spawn('ip', nsArgv(NS, process.execPath, [UPLINKD_BIN, 'run', '-c', config]), { stdio: ['ignore', 'ignore', 'pipe'], env: labEnv() });
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { log += d; });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ourRule = () => ip('-n', NS, 'rule', 'show').toString().includes('from 198.51.100.2 lookup');
    try {
      await until('ready', () => /event=ready/.test(log), () => log);
      assert.ok(ourRule(), 'the daemon did its work');
      assert.match(log, /event=lease .*wan0\.lease: is a FIFO \(named pipe\), expected a regular file/);

      // The config path becomes a FIFO nobody writes to.
      renameSync(config, `${config}.good`);
      execFileSync('mkfifo', [config]);
      child.kill('SIGHUP');
      await until('reload-rejected', () => /event=reload-rejected/.test(log), () => log);
      const line = log.split('\n').find((l) => l.includes('event=reload-rejected'))!;
      assert.ok(line.includes(`${config}: cannot read the configuration: is a FIFO (named pipe), expected a regular file`), line);
      assert.equal(child.exitCode, null, 'still running');
      assert.ok(ourRule(), 'the last good state stays');

      // Random bytes as config (`head -c 300 /dev/urandom`): rejected, and the log line stays plain text.
      rmSync(config);
      writeFileSync(config, randomBytes(300));
      const before = log.split('\n').filter((l) => l.includes('event=reload-rejected')).length;
      child.kill('SIGHUP');
      await until('a second reload-rejected', () => log.split('\n').filter((l) => l.includes('event=reload-rejected')).length > before, () => log);
      const lines = log.split('\n').filter((l) => l.includes('event=reload-rejected'));
      assert.doesNotMatch(lines.at(-1)!, /[\u0000-\u001f\u007f-\u009f]/, JSON.stringify(lines.at(-1)));
      assert.match(lines.at(-1)!, /error=".*uplinkd\.yaml:\d+:\d+: /);
      assert.ok(ourRule(), 'the last good state stays');
      assert.equal(child.exitCode, null, 'still running');

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
