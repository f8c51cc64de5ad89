import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UplinkdError } from '../src/errors';
import { run, showCommand, waitFor } from './exec';
import { checkPrefix } from './topology';

const node = process.execPath;

test('run collects output and passes stdin', async () => {
  const r = await run(node, ['-e', 'process.stdin.pipe(process.stdout); console.error("e")'], { input: 'hello' });
  assert.deepEqual({ code: r.code, out: r.stdout, err: r.stderr.trim() }, { code: 0, out: 'hello', err: 'e' });
});

test('run rejects with UplinkdError on a non-zero exit unless allowFail', async () => {
  await assert.rejects(run(node, ['-e', 'console.error("boom"); process.exit(3)']), (e: unknown) => {
    assert.ok(e instanceof UplinkdError);
    assert.equal(e.code, 'lab');
    assert.match(e.message, /exited with 3: boom/);
    return true;
  });
  assert.equal((await run(node, ['-e', 'process.exit(3)'], { allowFail: true })).code, 3);
});

test('run kills a program at its timeout', async () => {
  const r = await run(node, ['-e', 'setTimeout(() => {}, 10000)'], { timeoutMs: 200, allowFail: true });
  assert.equal(r.timedOut, true);
  assert.equal(r.code, null);
});

test('showCommand quotes only what needs it', () => {
  assert.equal(showCommand('ip', ['-n', 'ul-router', 'rule', 'add', 'from', "a b'c"]), `ip -n ul-router rule add from 'a b'\\''c'`);
});

test('waitFor polls until a value, else times out', async () => {
  let n = 0;
  assert.equal(await waitFor('n to reach 3', async () => (++n >= 3 ? n : undefined), 1000, 1), 3);
  await assert.rejects(waitFor('never', async () => undefined, 50, 10), /timed out after 50 ms waiting for never/);
});

test('lab prefixes must make safe namespace names', () => {
  for (const ok of ['ul-', 'ult1-', 'a']) assert.doesNotThrow(() => checkPrefix(ok));
  for (const bad of ['', '-x', 'a/b', 'UL-', 'x'.repeat(13), 'a b']) assert.throws(() => checkPrefix(bad), UplinkdError, bad);
});
