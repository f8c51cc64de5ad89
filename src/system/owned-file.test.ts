import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CREATED_MARKER, OWNED_HEADER, removeOwnedFile, writeOwnedFile } from './owned-file';
import { UplinkdError } from '../errors';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ulsys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('writeOwnedFile creates the directory and writes header + content, leaving no temp file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'iproute2/rt_tables.d/uplinkd.conf');
  assert.equal(await writeOwnedFile(file, '1000\tuplinkd\n'), true);
  assert.equal(readFileSync(file, 'utf8'), '# Managed by uplinkd; removed by `uplinkd down`.\n1000\tuplinkd\n');
  assert.equal(statSync(file).mode & 0o777, 0o644);
  // The directory it created carries the marker that lets `down` remove it.
  assert.deepEqual(readdirSync(path.dirname(file)).sort(), [CREATED_MARKER, 'uplinkd.conf']);
});

test('removeOwnedFile removes the directory writeOwnedFile created once it is empty, never an admin\'s', async (t) => {
  const dir = tempDir(t);
  // Created by uplinkd, nothing else in it: goes with the file (parents it created stay).
  const created = path.join(dir, 'iproute2', 'rt_tables.d');
  await writeOwnedFile(path.join(created, 'uplinkd.conf'), 'a\n');
  assert.equal(await removeOwnedFile(path.join(created, 'uplinkd.conf')), 'removed');
  assert.deepEqual(readdirSync(path.join(dir, 'iproute2')), []);
  // Created by uplinkd, then an admin added a file: stays, with that file.
  await writeOwnedFile(path.join(created, 'uplinkd.conf'), 'a\n');
  writeFileSync(path.join(created, 'admin.conf'), '100 admin\n');
  assert.equal(await removeOwnedFile(path.join(created, 'uplinkd.conf')), 'removed');
  assert.deepEqual(readdirSync(created).sort(), [CREATED_MARKER, 'admin.conf']);
  // The admin's own directory (no marker): stays even when empty.
  const admins = path.join(dir, 'rt_protos.d');
  mkdirSync(admins);
  await writeOwnedFile(path.join(admins, 'uplinkd.conf'), 'a\n');
  assert.equal(await removeOwnedFile(path.join(admins, 'uplinkd.conf')), 'removed');
  assert.deepEqual(readdirSync(admins), []);
});

test('writeOwnedFile: unchanged content is not rewritten, changed content replaces ours', async (t) => {
  const file = path.join(tempDir(t), 'x.conf');
  assert.equal(await writeOwnedFile(file, 'a\n'), true);
  assert.equal(await writeOwnedFile(file, 'a\n'), false);
  assert.equal(await writeOwnedFile(file, 'b\n'), true);
  assert.equal(readFileSync(file, 'utf8'), `${OWNED_HEADER}\nb\n`);
});

test('writeOwnedFile refuses to replace a file it did not write', async (t) => {
  const file = path.join(tempDir(t), 'x.conf');
  writeFileSync(file, '100 admin\n');
  await assert.rejects(writeOwnedFile(file, 'a\n'), UplinkdError);
  assert.equal(readFileSync(file, 'utf8'), '100 admin\n');
});

test('removeOwnedFile removes only our files', async (t) => {
  const dir = tempDir(t);
  const ours = path.join(dir, 'ours.conf');
  const theirs = path.join(dir, 'theirs.conf');
  await writeOwnedFile(ours, 'a\n');
  writeFileSync(theirs, `100 admin\n${OWNED_HEADER}\n`);
  assert.equal(await removeOwnedFile(ours), 'removed');
  assert.equal(await removeOwnedFile(ours), 'absent');
  assert.equal(await removeOwnedFile(theirs), 'foreign');
  assert.deepEqual(readdirSync(dir), ['theirs.conf']);
});

test('write errors are UplinkdError io', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'file'), '');
  await assert.rejects(writeOwnedFile(path.join(dir, 'file/sub/x.conf'), 'a\n'), (err: unknown) => {
    assert.ok(err instanceof UplinkdError);
    assert.equal(err.code, 'io');
    return true;
  });
});
