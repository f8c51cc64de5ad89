import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../log';
import { HookQueue, hookEnvironment, runHooks, trustProblem } from './hooks';
import type { HealthChange } from './monitor';

const CHANGE: HealthChange = {
  uplink: 'isp1',
  from: 'up',
  to: 'down',
  reason: '12 probe rounds in a row failed: 203.0.113.5 timeout',
  stats: { state: 'down', since: 0, rttMs: null, jitterMs: null, lossPct: 100, lastError: '203.0.113.5 timeout' , reason: 'test', targets: [], suspect: null},
  endpoint: { interface: 'if1', address: '198.51.100.2', gateway: '198.51.100.1' },
};

describe('hook trust rule', () => {
  it('accepts root-owned files writable by root only', () => {
    assert.equal(trustProblem({ uid: 0, mode: 0o100755 }), undefined);
    assert.equal(trustProblem({ uid: 0, mode: 0o40700 }), undefined);
  });
  it('refuses other owners and group/world-writable files, saying why', () => {
    assert.equal(trustProblem({ uid: 1000, mode: 0o100755 }), 'owned by uid 1000, not root');
    assert.equal(trustProblem({ uid: 0, mode: 0o100775 }), 'writable by group (mode 0775)');
    assert.equal(trustProblem({ uid: 0, mode: 0o100757 }), 'writable by others (mode 0757)');
    assert.equal(trustProblem({ uid: 0, mode: 0o100777 }), 'writable by group and others (mode 0777)');
  });
});

describe('hook environment', () => {
  it('names the uplink, both states, its interface, address and gateway, and the reason', () => {
    assert.deepEqual(hookEnvironment(CHANGE), {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      UPLINKD_UPLINK: 'isp1',
      UPLINKD_STATE: 'down',
      UPLINKD_OLD_STATE: 'up',
      UPLINKD_INTERFACE: 'if1',
      UPLINKD_ADDRESS: '198.51.100.2',
      UPLINKD_GATEWAY: '198.51.100.1',
      UPLINKD_REASON: '12 probe rounds in a row failed: 203.0.113.5 timeout',
    });
    const bare = hookEnvironment({ ...CHANGE, endpoint: undefined });
    assert.equal(bare.UPLINKD_ADDRESS, '');
    assert.equal(bare.UPLINKD_INTERFACE, '');
  });
});

// Ownership checks need root (chown); the rest of the behaviour is the same for everyone.
const isRoot = process.getuid?.() === 0;

describe('running hooks', { skip: isRoot ? undefined : 'needs root to chown hook files' }, () => {
  let dir: string;
  let out: string;
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => lines.push(l) });

  const hook = (name: string, body: string, mode = 0o755, uid = 0) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`);
    fs.chmodSync(file, mode);
    fs.chownSync(file, uid, 0);
    return file;
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ulhl-hooks-'));
    fs.chmodSync(dir, 0o755);
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'ulhl-hooks-out-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('runs executables in name order with the environment; skips non-executables and dotfiles; refuses untrusted files', async () => {
    const record = `echo "$0 $UPLINKD_UPLINK $UPLINKD_OLD_STATE->$UPLINKD_STATE $UPLINKD_INTERFACE $UPLINKD_ADDRESS $UPLINKD_GATEWAY" >> ${out}/log`;
    hook('20-second', record);
    hook('10-first', `${record}\necho hello from first`);
    hook('30-fails', 'echo broken >&2; exit 3');
    hook('README', 'not a hook', 0o644);
    hook('.hidden', record);
    const foreign = hook('40-foreign', record, 0o755, 65534);
    const writable = hook('50-writable', record, 0o775);
    fs.chmodSync(writable, 0o775); // chmod ignores the umask; writeFileSync's mode would not

    const outcomes = await runHooks(dir, hookEnvironment(CHANGE), { log });
    assert.deepEqual(
      outcomes.map((o) => [path.basename(o.file), o.status]),
      [['10-first', 'ran'], ['20-second', 'ran'], ['30-fails', 'ran'], ['40-foreign', 'refused'], ['50-writable', 'refused']],
    );
    const ran = fs.readFileSync(path.join(out, 'log'), 'utf8').trim().split('\n');
    assert.deepEqual(ran, [
      `${dir}/10-first isp1 up->down if1 198.51.100.2 198.51.100.1`,
      `${dir}/20-second isp1 up->down if1 198.51.100.2 198.51.100.1`,
    ]);
    const failed = outcomes[2];
    assert.ok(failed.status === 'ran' && failed.exitCode === 3 && failed.output === 'broken\n');
    assert.ok(lines.some((l) => l.includes('event=hook_refused') && l.includes(foreign) && l.includes('owned by uid 65534, not root')));
    assert.ok(lines.some((l) => l.includes('event=hook_refused') && l.includes(writable) && l.includes('writable by group (mode 0775)')));
    assert.ok(lines.some((l) => l.includes('level=warn') && l.includes('30-fails') && l.includes('exit=3')));
    assert.ok(lines.some((l) => l.includes('level=info') && l.includes('10-first') && l.includes('output="hello from first"')));
  });

  it('kills a hook that runs past the timeout and goes on with the next', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ulhl-hooks-slow-'));
    try {
      fs.chmodSync(d, 0o755);
      for (const [name, body] of [['1-slow', 'sleep 30'], ['2-next', `echo next >> ${out}/slow`]]) {
        fs.writeFileSync(path.join(d, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      }
      const outcomes = await runHooks(d, hookEnvironment(CHANGE), { timeoutMs: 200 });
      assert.ok(outcomes[0].status === 'ran' && outcomes[0].timedOut && outcomes[0].signal === 'SIGKILL');
      assert.equal(fs.readFileSync(path.join(out, 'slow'), 'utf8'), 'next\n');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('refuses a directory writable by others, and treats a missing directory as no hooks', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ulhl-hooks-open-'));
    try {
      fs.writeFileSync(path.join(d, 'hook'), `#!/bin/sh\ntouch ${out}/should-not-exist\n`, { mode: 0o755 });
      fs.chmodSync(d, 0o777);
      const outcomes = await runHooks(d, hookEnvironment(CHANGE), { log });
      assert.deepEqual(outcomes, [{ file: d, status: 'refused', reason: 'writable by group and others (mode 0777)' }]);
      assert.equal(fs.existsSync(path.join(out, 'should-not-exist')), false);
      assert.ok(lines.some((l) => l.includes(d) && l.includes('refusing the hooks directory')));
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
    assert.deepEqual(await runHooks(path.join(out, 'no-such-dir'), hookEnvironment(CHANGE)), []);
  });

  it('HookQueue runs batches one after another in the order of the changes', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ulhl-hooks-queue-'));
    try {
      fs.chmodSync(d, 0o755);
      fs.writeFileSync(path.join(d, 'h'), `#!/bin/sh\necho "start $UPLINKD_STATE" >> ${out}/queue\nsleep 0.1\necho "end $UPLINKD_STATE" >> ${out}/queue\n`, { mode: 0o755 });
      const queue = new HookQueue(() => d);
      await Promise.all([queue.run(CHANGE), queue.run({ ...CHANGE, from: 'down', to: 'up' })]);
      assert.equal(fs.readFileSync(path.join(out, 'queue'), 'utf8'), 'start down\nend down\nstart up\nend up\n');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
