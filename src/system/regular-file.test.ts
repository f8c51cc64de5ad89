import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { UplinkdError } from '../errors';
import { readRegularFile } from './regular-file';

describe('readRegularFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-regular-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refused = async (file: string, max: number, reason: RegExp): Promise<UplinkdError> => {
    const err = await readRegularFile(file, max).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UplinkdError, `expected an UplinkdError, got ${String(err)}`);
    assert.equal(err.code, 'io');
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.match(err.message, reason);
    return err;
  };

  it('reads a regular file, up to and including exactly the limit', async () => {
    const file = path.join(dir, 'ok.yaml');
    writeFileSync(file, 'x'.repeat(100));
    assert.equal((await readRegularFile(file, 100)).toString(), 'x'.repeat(100));
  });

  it('refuses a file over the limit instead of reading it all', async () => {
    const file = path.join(dir, 'big');
    writeFileSync(file, 'x'.repeat(101));
    await refused(file, 100, /larger than 100 bytes, expected at most 100$/);
  });

  it('bounds by reading, not by st_size: a /proc file (st_size 0) is read whole', async () => {
    const text = (await readRegularFile('/proc/self/status', 1 << 20)).toString();
    assert.match(text, /^Name:/);
  });

  it('refuses a FIFO at once, with or without a writer, instead of blocking in open(2)', async () => {
    const fifo = path.join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    // Without O_NONBLOCK this await would never settle and the test would time out.
    await refused(fifo, 1000, /is a FIFO \(named pipe\), expected a regular file$/);
  });

  it('refuses a FIFO reached through a symlink (the descriptor is checked, not the name)', async () => {
    const link = path.join(dir, 'link.yaml');
    execFileSync('ln', ['-s', 'fifo.yaml', link]);
    await refused(link, 1000, /is a FIFO/);
  });

  it('refuses a directory, a character device and a socket', async () => {
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    await refused(sub, 1000, /is a directory, expected a regular file$/);
    await refused('/dev/zero', 1000, /is a character device, expected a regular file$/);
    const sock = path.join(dir, 'sock');
    const server = net.createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      await refused(sock, 1000, /socket/);
    } finally {
      server.close();
    }
  });

  it('names a missing file with ENOENT in detail.errno', async () => {
    const err = await refused(path.join(dir, 'absent'), 1000, /: no such file$/);
    assert.equal(err.detail.errno, 'ENOENT');
  });
});
