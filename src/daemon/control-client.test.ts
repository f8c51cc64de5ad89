import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { UplinkdError } from '../errors';
import { defaultTransport, queryDaemon, type ControlTransport } from './control-client';

// Each peer runs in a child process: the blocking transport would starve a server in this one.
// Modes: how the peer answers each request line.
const PEER = `
const [sock, mode] = process.argv.slice(1);
const server = require('net').createServer((c) => {
  let got = '';
  c.on('data', (d) => {
    got += d;
    if (!got.includes('\\n')) return;
    const request = JSON.parse(got.slice(0, got.indexOf('\\n')));
    const line = JSON.stringify({ ok: true, result: { request } }) + '\\n';
    if (mode === 'echo') c.end(line);
    else if (mode === 'split') { c.write(line.slice(0, 5)); setTimeout(() => c.write(line.slice(5, 12)), 50); setTimeout(() => c.end(line.slice(12) + 'more'), 100); }
    else if (mode === 'big') c.end(JSON.stringify({ ok: true, result: { text: 'x'.repeat(3 << 20) } }) + '\\n');
    else if (mode === 'refuse') c.end(JSON.stringify({ ok: false, code: 'config', error: 'f.yaml:3:5: uplinks[0].weight: expected a number' }) + '\\n');
    else if (mode === 'garbage') c.end('not json\\n');
    else if (mode === 'close') c.end('{"ok":true');
    // 'silent': reads and never answers
  });
});
server.listen(sock, () => process.stdout.write('ready\\n'));
`;

const TRANSPORTS: readonly ControlTransport[] = ['blocking', 'net'];

async function withPeer(mode: string, fn: (sock: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-client-'));
  const sock = path.join(dir, 'control.sock');
  const child: ChildProcess = spawn(process.execPath, ['-e', PEER, sock, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`peer exited ${code}`)));
    });
    await fn(sock);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const ioError = (pattern: RegExp, errno?: string) => (e: unknown) =>
  e instanceof UplinkdError && e.code === 'io' && pattern.test(e.message) && (errno === undefined || e.detail?.errno === errno);

test('the addon is built and is what the CLI uses', () => {
  assert.equal(defaultTransport(), 'blocking');
});

for (const transport of TRANSPORTS) {
  test(`${transport}: the request goes out as one JSON line and the answer's result comes back`, async () => {
    await withPeer('echo', async (sock) => {
      assert.deepEqual(await queryDaemon(sock, { cmd: 'status', view: 'text' }, 5_000, transport), { request: { cmd: 'status', view: 'text' } });
    });
  });

  test(`${transport}: an answer arriving in pieces is read up to its first newline`, async () => {
    await withPeer('split', async (sock) => {
      assert.deepEqual(await queryDaemon(sock, { cmd: 'resync', cause: 'hook' }, 5_000, transport), { request: { cmd: 'resync', cause: 'hook' } });
    });
  });

  test(`${transport}: a 3 MiB answer arrives whole`, async () => {
    await withPeer('big', async (sock) => {
      const result = (await queryDaemon(sock, { cmd: 'status' }, 10_000, transport)) as { text: string };
      assert.equal(result.text.length, 3 << 20);
    });
  });

  test(`${transport}: a refusal is UplinkdError with the daemon's code and message`, async () => {
    await withPeer('refuse', async (sock) => {
      await assert.rejects(queryDaemon(sock, { cmd: 'reload' }, 5_000, transport),
        (e: unknown) => e instanceof UplinkdError && e.code === 'config' && /uplinks\[0\]\.weight/.test(e.message));
    });
  });

  test(`${transport}: an answer that is not JSON, or no full line before the close, is an io error`, async () => {
    await withPeer('garbage', async (sock) => {
      await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 5_000, transport), ioError(/malformed answer/));
    });
    await withPeer('close', async (sock) => {
      await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 5_000, transport), ioError(/closed .* without answering/));
    });
  });

  test(`${transport}: a daemon that never answers is given up after the timeout`, async () => {
    await withPeer('silent', async (sock) => {
      await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 300, transport), ioError(/did not answer on .* within 300 ms/));
    });
  });

  test(`${transport}: no socket, or a socket nobody listens on, is "not running"`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-client-'));
    try {
      const sock = path.join(dir, 'control.sock');
      await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 5_000, transport), ioError(/uplinkd is not running \(no daemon on /, 'ENOENT'));
      // The socket file kill -9 leaves behind.
      spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 5_000, transport), ioError(/uplinkd is not running/, 'ECONNREFUSED'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('blocking: a path longer than a unix socket address holds is refused, not cut short', async () => {
  const sock = `/tmp/${'d'.repeat(120)}/control.sock`;
  await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 5_000, 'blocking'), ioError(/cannot reach uplinkd on .*: connect: File name too long/, 'ENAMETOOLONG'));
});

test('blocking: a listener whose backlog stays full is waited for until the deadline, then "did not answer"', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-client-'));
  const sock = path.join(dir, 'control.sock');
  // listen(2) with a backlog of 0 that never accepts, filled until a non-blocking connect says EAGAIN
  // (python3: node:net accepts by itself; node-gyp needs python3 wherever the addon was built).
  const peer = spawn('python3', ['-c', `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(0)
held = []
while True:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.setblocking(False)
    try: c.connect(sys.argv[1])
    except BlockingIOError: break
    held.append(c)
print('ready', flush=True); time.sleep(60)`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      peer.stdout!.once('data', () => resolve());
      peer.once('exit', (code) => reject(new Error(`peer exited ${code}`)));
    });
    await assert.rejects(queryDaemon(sock, { cmd: 'status' }, 300, 'blocking'), ioError(/did not answer on .* within 300 ms/));
  } finally {
    peer.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
