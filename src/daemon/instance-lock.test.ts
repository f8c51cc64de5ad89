import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { UplinkdError } from '../errors';
import { holdInstanceLock, instanceLockHolder } from './instance-lock';

// Protocol numbers no real daemon of this machine uses; the lock is the test process's network namespace's.
const PROTOCOL = 250;

test('a second holder is refused with the first holder pid; release frees the lock', async () => {
  const first = await holdInstanceLock(PROTOCOL);
  try {
    await assert.rejects(holdInstanceLock(PROTOCOL), (e: unknown) => {
      assert.ok(e instanceof UplinkdError && e.code === 'io');
      assert.match(e.message, new RegExp(`another uplinkd \\(pid ${process.pid}\\) manages routing protocol ${PROTOCOL} in this network namespace`));
      return true;
    });
    const other = await holdInstanceLock(PROTOCOL + 1);
    await other.release();
  } finally {
    await first.release();
  }
  const again = await holdInstanceLock(PROTOCOL);
  await again.release();
});

test('the kernel releases the lock when its holder is killed (SIGKILL: no clean-up ran)', async () => {
  const code = `const net=require('node:net');net.createServer().listen('\\0uplinkd/protocol/${PROTOCOL}',()=>console.log('held'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  await assert.rejects(holdInstanceLock(PROTOCOL), /another uplinkd .*manages routing protocol/);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const lock = await holdInstanceLock(PROTOCOL);
  await lock.release();
});

test('instanceLockHolder: none while the lock is free, the holder pid while held, none again after release', async () => {
  assert.equal(await instanceLockHolder(PROTOCOL), undefined);
  const lock = await holdInstanceLock(PROTOCOL);
  try {
    assert.deepEqual(await instanceLockHolder(PROTOCOL), { pid: String(process.pid) });
  } finally {
    await lock.release();
  }
  assert.equal(await instanceLockHolder(PROTOCOL), undefined);
});
