import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { hashTree, treeDiff } from './tree-hash';

test('hashTree sees content, mode, symlink and new-file changes, and skips what it is told to', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tree-hash-'));
  try {
    await fs.mkdir(path.join(dir, 'sub'));
    await fs.writeFile(path.join(dir, 'a'), 'one');
    await fs.symlink('a', path.join(dir, 'l'));
    await fs.writeFile(path.join(dir, 'sub', 'skipped'), 'x');
    const skip = (rel: string) => rel === path.join('sub', 'skipped');
    const h0 = await hashTree(dir, skip);
    assert.deepEqual(treeDiff(h0, await hashTree(dir, skip)), []);
    await fs.writeFile(path.join(dir, 'sub', 'skipped'), 'changed');
    assert.deepEqual(treeDiff(h0, await hashTree(dir, skip)), []);
    await fs.writeFile(path.join(dir, 'a'), 'two');
    assert.deepEqual(treeDiff(h0, await hashTree(dir, skip)), ['a']);
    await fs.writeFile(path.join(dir, 'a'), 'one');
    const mode = (await fs.stat(path.join(dir, 'a'))).mode & 0o777;
    await fs.chmod(path.join(dir, 'a'), mode ^ 0o004);
    assert.deepEqual(treeDiff(h0, await hashTree(dir, skip)), ['a']);
    await fs.chmod(path.join(dir, 'a'), mode);
    await fs.rm(path.join(dir, 'l'));
    await fs.symlink('sub', path.join(dir, 'l'));
    await fs.writeFile(path.join(dir, 'new'), '');
    // '' is the top directory: its list of names changed
    assert.deepEqual(treeDiff(h0, await hashTree(dir, skip)), ['', 'l', 'new']);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
