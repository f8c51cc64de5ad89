import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findSocketRecord, recordPath, removeSocketRecord, runtimeDir, writeSocketRecord } from './socket-record';

describe('socket record', () => {
  let tmp: string;
  let run: string;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'uplinkd-record-'));
    run = path.join(tmp, 'run');
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  const TEXT = 'uplinks: []\npaths:\n  control_socket: /run/x/control.sock\n';

  async function recorded(name: string, text = TEXT): Promise<{ file: string; record: string }> {
    const file = path.join(tmp, name);
    await fs.writeFile(file, text);
    return { file, record: await writeSocketRecord(file, Buffer.from(text), '/run/x/control.sock', run) };
  }

  const SAME = (file: string) => ({ controlSocket: '/run/x/control.sock', file, sameText: true });
  const CHANGED = (file: string) => ({ controlSocket: '/run/x/control.sock', file, sameText: false });

  it('gives the recorded socket while the file holds the text that parsed', async () => {
    const { file, record } = await recorded('a.yaml');
    assert.deepEqual(findSocketRecord(file, run), SAME(await fs.realpath(file)));
    assert.equal(record, recordPath(run, await fs.realpath(file)));
    assert.equal((await fs.stat(record)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(record))).mode & 0o777, 0o700);
    const stored = JSON.parse(await fs.readFile(record, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(stored, { file: await fs.realpath(file), text: TEXT, controlSocket: '/run/x/control.sock', pid: process.pid, name: file });
  });

  it('finds the record through another name of the same file (relative path, symlink)', async () => {
    const { file } = await recorded('b.yaml');
    const link = path.join(tmp, 'b-link.yaml');
    await fs.symlink(file, link);
    const real = await fs.realpath(file);
    assert.deepEqual(findSocketRecord(link, run), SAME(real));
    assert.deepEqual(findSocketRecord(path.relative(process.cwd(), file), run), SAME(real));
  });

  it('keeps the recorded socket once the file changed in any byte (another socket, broken, same length), saying it changed', async () => {
    const { file } = await recorded('c.yaml');
    const real = await fs.realpath(file);
    await fs.writeFile(file, TEXT.replace('/run/x/', '/run/y/'));
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real), 'the daemon still listens where it started');
    await fs.writeFile(file, `${TEXT}: : not yaml [\n`);
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real));
    await fs.writeFile(file, TEXT);
    assert.deepEqual(findSocketRecord(file, run), SAME(real), 'the same text again');
  });

  it('finds the record of a file removed, replaced by a dangling symlink or a symlink loop, or whose symlink target was removed', async () => {
    const { file } = await recorded('g.yaml');
    const real = await fs.realpath(file);
    await fs.unlink(file);
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real), 'plain rm');
    await fs.symlink('/nonexistent-uplinkd-test', file);
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real), 'a dangling symlink (ENOENT)');
    await fs.unlink(file);
    const loop = path.join(tmp, 'g-loop.yaml');
    await fs.symlink(loop, file);
    await fs.symlink(file, loop);
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real), 'a symlink loop (ELOOP)');
    assert.deepEqual(findSocketRecord(path.relative(process.cwd(), file), run), CHANGED(real), 'relative name of the loop');
    // A daemon that ran cfg -> h.yaml: h.yaml removed, cfg dangles at it.
    const { file: target } = await recorded('h.yaml');
    const cfg = path.join(tmp, 'h-cfg.yaml');
    await fs.symlink(target, cfg);
    const realTarget = await fs.realpath(target);
    await fs.unlink(target);
    assert.deepEqual(findSocketRecord(cfg, run), CHANGED(realTarget));
  });

  it('finds the record of a daemon started with a symlink name re-pointed or replaced since (by the name it was started with)', async () => {
    const target = path.join(tmp, 'k-v2.yaml');
    const other = path.join(tmp, 'k-v1.yaml');
    const cfg = path.join(tmp, 'k-cfg.yaml');
    await fs.writeFile(target, TEXT);
    await fs.writeFile(other, `${TEXT}# v1\n`);
    await fs.symlink(target, cfg);
    await writeSocketRecord(cfg, Buffer.from(TEXT), '/run/x/control.sock', run);
    const real = await fs.realpath(target);
    assert.deepEqual(findSocketRecord(cfg, run), SAME(real));
    await fs.rm(cfg);
    await fs.symlink(other, cfg);
    assert.deepEqual(findSocketRecord(cfg, run), CHANGED(real), 're-pointed: the daemon still runs v2');
    await fs.rm(cfg);
    await fs.symlink('/nonexistent-uplinkd-test', cfg);
    assert.deepEqual(findSocketRecord(cfg, run), CHANGED(real), 'replaced by a dangling symlink');
    assert.equal(findSocketRecord(other, run), undefined, 'v1 itself was never run');
  });

  it('gives nothing for a record of another file, a missing or malformed record, a missing file', async () => {
    const { file, record } = await recorded('d.yaml');
    const stored = JSON.parse(await fs.readFile(record, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(record, JSON.stringify({ ...stored, file: '/etc/other.yaml' }));
    assert.equal(findSocketRecord(file, run), undefined);
    await fs.writeFile(record, JSON.stringify({ ...stored, controlSocket: 7 }));
    assert.equal(findSocketRecord(file, run), undefined);
    await fs.writeFile(record, '{"version":');
    assert.equal(findSocketRecord(file, run), undefined);
    await fs.unlink(record);
    assert.equal(findSocketRecord(file, run), undefined);
    assert.equal(findSocketRecord(path.join(tmp, 'no-such.yaml'), run), undefined);
  });

  it('never blocks on a FIFO at the configuration path, and skips a directory there', async () => {
    const { file } = await recorded('e.yaml');
    await fs.unlink(file);
    execFileSync('mkfifo', [file]);
    // A record that claims the FIFO's path: the reader must not wait for a writer.
    const real = await fs.realpath(file);
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real));
    await fs.unlink(file);
    await fs.mkdir(file);
    assert.deepEqual(findSocketRecord(file, run), CHANGED(real));
  });

  it('is removed by the process that wrote it only', async () => {
    const { file, record } = await recorded('f.yaml');
    const stored = JSON.parse(await fs.readFile(record, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(record, JSON.stringify({ ...stored, pid: process.pid + 1 }));
    await removeSocketRecord(record);
    await fs.access(record);
    await writeSocketRecord(file, Buffer.from(TEXT), '/run/x/control.sock', run);
    await removeSocketRecord(record);
    await assert.rejects(fs.access(record), { code: 'ENOENT' });
    await removeSocketRecord(record); // already gone: no error
  });

  it('puts records under $UPLINKD_RUNTIME_DIR when it is absolute, else /run/uplinkd', () => {
    assert.equal(runtimeDir({ UPLINKD_RUNTIME_DIR: '/tmp/r' }), '/tmp/r');
    assert.equal(runtimeDir({ UPLINKD_RUNTIME_DIR: 'relative' }), '/run/uplinkd');
    assert.equal(runtimeDir({}), '/run/uplinkd');
    assert.equal(recordPath('/run/uplinkd', '/etc/uplinkd/uplinkd.yaml'), '/run/uplinkd/config/%2Fetc%2Fuplinkd%2Fuplinkd.yaml.json');
  });
});
