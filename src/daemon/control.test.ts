import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { UplinkdError } from '../errors';
import { createLogger } from '../log';
import { startControlServer, type ControlHandlers, type ControlRequest } from './control';
import { queryDaemon } from './control-client';

// The server runs in this process: a blocking query (the CLI's) would starve it, so these ask through node:net.
const ask = (sock: string, request: ControlRequest) => queryDaemon(sock, request, 30_000, 'net');

const quiet = createLogger({ sink: () => undefined });

function handlers(calls: string[], reloadOk = true): ControlHandlers {
  return {
    status: (view) => (view === 'text' ? { text: 'live view' } : { uplinks: ['isp1'], text: 'live view' }),
    reload: async () => (reloadOk ? { ok: true } : { ok: false, error: '/etc/uplinkd.yaml:3:5: uplinks[0].dhcp: expected true or false' }),
    resync: (cause) => calls.push(cause),
  };
}

test('status, resync and reload over the socket; the socket is 0600 in a 0700 directory', async () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'uplinkd-ctl-')), 'run');
  const sock = path.join(dir, 'control.sock');
  const calls: string[] = [];
  const server = await startControlServer(sock, handlers(calls), quiet);
  try {
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(await ask(sock, { cmd: 'status' }), { uplinks: ['isp1'], text: 'live view' });
    assert.deepEqual(await ask(sock, { cmd: 'status', view: 'text' }), { text: 'live view' });
    assert.equal(await ask(sock, { cmd: 'resync', cause: 'hook BOUND on if2' }), undefined);
    assert.deepEqual(calls, ['hook BOUND on if2']);
    await ask(sock, { cmd: 'reload' });
  } finally {
    await server.close();
  }
});

test('a rejected reload comes back as UplinkdError(config) with the daemon message', async () => {
  const sock = path.join(mkdtempSync(path.join(tmpdir(), 'uplinkd-ctl-')), 'control.sock');
  const server = await startControlServer(sock, handlers([], false), quiet);
  try {
    await assert.rejects(ask(sock, { cmd: 'reload' }), (e: unknown) => e instanceof UplinkdError && e.code === 'config' && /uplinks\[0\]\.dhcp/.test(e.message));
  } finally {
    await server.close();
  }
});

test('no daemon: a clear io error', async () => {
  const sock = path.join(mkdtempSync(path.join(tmpdir(), 'uplinkd-ctl-')), 'control.sock');
  await assert.rejects(ask(sock, { cmd: 'status' }), (e: unknown) => e instanceof UplinkdError && e.code === 'io' && /not running/.test(e.message));
});

test('a stale socket is replaced, a live one is not, and a non-socket file is never removed', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-ctl-'));
  const sock = path.join(dir, 'control.sock');
  // A socket file nobody listens on, as kill -9 leaves it behind.
  const script = `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script]);
  assert.ok(statSync(sock).isSocket());
  const first = await startControlServer(sock, handlers([]), quiet);
  try {
    await assert.rejects(startControlServer(sock, handlers([]), quiet), (e: unknown) => e instanceof UplinkdError && /another uplinkd is running/.test(e.message));
    assert.deepEqual(await ask(sock, { cmd: 'status' }), { uplinks: ['isp1'], text: 'live view' });
  } finally {
    await first.close();
  }
  const file = path.join(dir, 'not-a-socket');
  writeFileSync(file, 'x');
  await assert.rejects(startControlServer(file, handlers([]), quiet), /not a socket/);
});
