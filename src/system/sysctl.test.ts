import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FIVE_TUPLE_FIELDS, multipathHashSysctls, restoreMultipathHash, setMultipathHash, syncMultipathHash } from './sysctl';
import { UplinkdError } from '../errors';

test('l3 is policy 0; l4 is policy 3 over the 5-tuple, or policy 1 with a note on kernels without hash fields', () => {
  assert.deepEqual(multipathHashSysctls('l3', true), { policy: 0 });
  assert.deepEqual(multipathHashSysctls('l3', false), { policy: 0 });
  assert.deepEqual(multipathHashSysctls('l4', true), { policy: 3, fields: 0x37 });
  const old = multipathHashSysctls('l4', false);
  assert.equal(old.policy, 1);
  assert.match(old.note ?? '', /fib_multipath_hash_fields \(Linux 5\.12\+\).*pinning/);
});

// Against stand-in files: the real ones belong to the host namespace (see system.real.test.ts).
test('writes the fields, then the policy, only when they differ; returns the previous values', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ulsysctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = path.join(dir, 'fib_multipath_hash_policy');
  const fields = path.join(dir, 'fib_multipath_hash_fields');
  writeFileSync(policy, '1\n');
  writeFileSync(fields, '0x0007\n');
  assert.deepEqual(await setMultipathHash('l4', dir), { policy: 3, fields: FIVE_TUPLE_FIELDS, previous: { policy: 1, fields: 7 } });
  assert.equal(readFileSync(policy, 'utf8'), '3\n');
  assert.equal(readFileSync(fields, 'utf8'), '55\n');
  const before = [statSync(policy).mtimeMs, statSync(fields).mtimeMs];
  assert.deepEqual(await setMultipathHash('l4', dir), { policy: 3, fields: FIVE_TUPLE_FIELDS, previous: { policy: 3, fields: 55 } });
  assert.deepEqual([statSync(policy).mtimeMs, statSync(fields).mtimeMs], before);
  assert.deepEqual(await setMultipathHash('l3', dir), { policy: 0, previous: { policy: 3, fields: 55 } });
  assert.equal(readFileSync(fields, 'utf8'), '55\n', 'l3 leaves the fields alone');
});

test('a kernel without fib_multipath_hash_fields gets policy 1 and the note; a missing policy file is an io error', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ulsysctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'fib_multipath_hash_policy'), '0\n');
  const r = await setMultipathHash('l4', dir);
  assert.equal(r.policy, 1);
  assert.ok(r.note);
  assert.equal(readFileSync(path.join(dir, 'fib_multipath_hash_policy'), 'utf8'), '1\n');
  await assert.rejects(setMultipathHash('l4', path.join(dir, 'missing')), (e: unknown) => e instanceof UplinkdError && e.code === 'io' && /fib_multipath_hash_policy/.test(e.message));
});

test('the values found before the first change are recorded and put back; values someone changed since are left', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ulsysctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = path.join(dir, 'fib_multipath_hash_policy');
  const fields = path.join(dir, 'fib_multipath_hash_fields');
  const record = path.join(dir, 'run', 'sysctl', 'net-1.json');
  writeFileSync(policy, '1\n');
  writeFileSync(fields, '7\n');
  assert.deepEqual(await restoreMultipathHash(dir, record), { restored: [] }, 'nothing recorded: nothing to do');
  await setMultipathHash('l4', dir, record);
  await setMultipathHash('l3', dir, record); // a reload to l3: the first values stay the ones to put back
  assert.equal(readFileSync(policy, 'utf8'), '0\n');
  assert.equal(await syncMultipathHash(undefined, record, dir), undefined, 'the key removed: put back');
  assert.deepEqual([readFileSync(policy, 'utf8'), readFileSync(fields, 'utf8')], ['1\n', '7\n']);
  assert.throws(() => statSync(record), /ENOENT/);
  // Changed by someone else after uplinkd set it: left, and said.
  await setMultipathHash('l4', dir, record);
  writeFileSync(policy, '2\n');
  const r = await restoreMultipathHash(dir, record);
  assert.deepEqual(r.restored, []);
  assert.match(r.note ?? '', /policy 2 .* left as they are: changed since uplinkd set them/);
  assert.equal(readFileSync(policy, 'utf8'), '2\n');
  // Nothing differs: nothing recorded.
  writeFileSync(policy, '0\n');
  await setMultipathHash('l3', dir, record);
  assert.throws(() => statSync(record), /ENOENT/);
});
