import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setMultipathHashPolicy } from './sysctl';
import { UplinkdError } from '../errors';

// Against a stand-in file: the real one belongs to the host namespace (see sysctl.real.test.ts).
test('returns the previous value and writes the new one', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ulsysctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'fib_multipath_hash_policy');
  writeFileSync(file, '0\n');
  assert.deepEqual(await setMultipathHashPolicy(1, file), { previous: 0 });
  assert.equal(readFileSync(file, 'utf8'), '1\n');
  const before = statSync(file).mtimeMs;
  assert.deepEqual(await setMultipathHashPolicy(1, file), { previous: 1 });
  assert.equal(statSync(file).mtimeMs, before);
  await assert.rejects(setMultipathHashPolicy(0, path.join(dir, 'missing')), UplinkdError);
});
