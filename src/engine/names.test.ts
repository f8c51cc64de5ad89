import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../config/load';
import { removeOwnedNames, syncOwnedNames, writtenNamesList } from './names';

const configAt = (tables: string, protos: string, file = 't.yaml') => parseConfig([
  'uplinks:',
  '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1}',
  'paths:',
  `  rt_tables: ${tables}`,
  `  rt_protos: ${protos}`,
  '',
].join('\n'), file);

const exists = (file: string): Promise<boolean> => fs.access(file).then(() => true, () => false);

test('a reload to other name-file paths removes the files uplinkd wrote at the old ones, never a file it did not write', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uplinkd-names-'));
  const run = path.join(dir, 'run');
  try {
    const a = configAt(`${dir}/a/tables.conf`, `${dir}/a/protos.conf`);
    await syncOwnedNames(a, undefined, run);
    assert.ok(await exists(`${dir}/a/tables.conf`) && await exists(`${dir}/a/protos.conf`));
    // Only rt_tables moves: the old tables file goes, its directory (created by uplinkd) stays for protos.
    const b = configAt(`${dir}/b/tables.conf`, `${dir}/a/protos.conf`);
    await syncOwnedNames(b, a, run);
    assert.equal(await exists(`${dir}/a/tables.conf`), false);
    assert.ok(await exists(`${dir}/b/tables.conf`) && await exists(`${dir}/a/protos.conf`));
    // Both move: nothing of uplinkd's is left under a/, and the directory it created goes with them.
    const c = configAt(`${dir}/c/tables.conf`, `${dir}/c/protos.conf`);
    await syncOwnedNames(c, b, run);
    assert.equal(await exists(`${dir}/b/tables.conf`), false);
    assert.equal(await exists(`${dir}/a`), false);
    // An admin's file now at the old path is not ours: it stays.
    await fs.writeFile(`${dir}/c/protos.conf`, '200 mine\n');
    const d = configAt(`${dir}/c/tables.conf`, `${dir}/d/protos.conf`);
    await syncOwnedNames(d, c, run);
    assert.equal(await fs.readFile(`${dir}/c/protos.conf`, 'utf8'), '200 mine\n');
    // Paths swapped between the two settings: both files are rewritten, none removed.
    const e = configAt(`${dir}/d/protos.conf`, `${dir}/c/tables.conf`);
    await syncOwnedNames(e, d, run);
    assert.ok(await exists(`${dir}/d/protos.conf`) && await exists(`${dir}/c/tables.conf`));
    await removeOwnedNames(e, run);
    assert.equal(await exists(`${dir}/d/protos.conf`), false);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('without a reload in between (apply, a restarted daemon, down), the list of written paths finds the old files', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uplinkd-names-'));
  const run = path.join(dir, 'run');
  const file = path.join(dir, 'uplinkd.yaml');
  try {
    const a = configAt(`${dir}/a/tables.conf`, `${dir}/a/protos.conf`, file);
    await syncOwnedNames(a, undefined, run);
    assert.deepEqual(JSON.parse(await fs.readFile(writtenNamesList(a, run), 'utf8')), [`${dir}/a/tables.conf`, `${dir}/a/protos.conf`]);
    // The same file with other paths, no previous configuration in memory: the old files still go.
    const b = configAt(`${dir}/b/tables.conf`, `${dir}/b/protos.conf`, file);
    await syncOwnedNames(b, undefined, run);
    assert.equal(await exists(`${dir}/a`), false);
    // Down with yet other paths (never written) removes what was written, and the list.
    const c = configAt(`${dir}/c/tables.conf`, `${dir}/c/protos.conf`, file);
    await removeOwnedNames(c, run);
    assert.equal(await exists(`${dir}/b`), false);
    assert.equal(await exists(writtenNamesList(c, run)), false);
    // Another configuration file's list is its own: its files are not touched.
    const other = configAt(`${dir}/o/tables.conf`, `${dir}/o/protos.conf`, path.join(dir, 'other.yaml'));
    await syncOwnedNames(other, undefined, run);
    await syncOwnedNames(configAt(`${dir}/d/tables.conf`, `${dir}/d/protos.conf`, file), undefined, run);
    assert.ok(await exists(`${dir}/o/tables.conf`));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
