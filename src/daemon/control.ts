// The daemon's unix control socket: one JSON object per line each way.
//   {"cmd":"status"}  {"cmd":"status","view":"text"}  {"cmd":"reload"}  {"cmd":"resync","cause":"hook BOUND on eth1"}
// Answers: {"ok":true,"result":...} or {"ok":false,"code":"config","error":"..."}.
// Root only: the directory is created 0700 and the socket is 0600 from the moment it exists.
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { UplinkdError, type ErrorCode } from '../errors';
import type { Logger } from '../log';
import type { ReloadCycle } from './daemon';

export type ControlRequest = { cmd: 'status'; view?: StatusView } | { cmd: 'reload' } | { cmd: 'resync'; cause?: string };
export type ControlResponse = { ok: true; result?: unknown } | { ok: false; code: ErrorCode; error: string };

/**
 * 'full' (the default): everything `uplinkd status --json` prints, the health history included. 'text': only
 * what the text form and the CLI's checks need (pid, configRealPath, text), a small answer whatever the
 * history holds. A daemon that does not know `view` answers in full, which a client reads the same way.
 */
export type StatusView = 'full' | 'text';

export interface ControlHandlers {
  status(view: StatusView): unknown;
  /**
   * Resolves with an UplinkdError-like rejection text when the new config is invalid; `notes` are
   * things the user should know about an adopted one (sent as the answer's result).
   */
  reload(): Promise<{ ok: true; notes?: string[]; cycle?: ReloadCycle } | { ok: false; error: string }>;
  resync(cause: string): void;
}

/** A running control socket; close() stops listening and removes the socket file. */
export interface ControlServer {
  close(): Promise<void>;
}

const MAX_REQUEST = 64 * 1024;

/**
 * Listens on the unix socket `socketPath` (directory created 0700, socket 0600 from the moment it exists) and answers
 * one JSON request per line with `handlers` (requests of one connection in order; at most 64 KiB per request line).
 * Throws UplinkdError('io') when the path is not a socket, another uplinkd answers on it, or it cannot listen.
 */
export async function startControlServer(socketPath: string, handlers: ControlHandlers, log: Logger): Promise<ControlServer> {
  await prepareSocketPath(socketPath);
  const server = net.createServer((conn) => serve(conn, handlers, log));
  // umask, not chmod after bind: no moment where the socket exists with wider permissions.
  const oldMask = process.umask(0o177);
  try {
    server.listen(socketPath);
    await once(server, 'listening'); // rejects with the 'error' event's error (EADDRINUSE, EACCES)
  } catch (err) {
    throw new UplinkdError('io', `cannot listen on ${socketPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(socketPath, 0o600);
  server.on('error', (err) => log.error('control', { error: err.message }));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          fs.unlinkSync(socketPath);
        } catch {
          // already gone
        }
      }),
  };
}

/** Creates the directory (0700) and removes a stale socket, but only when nothing answers on it. */
async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new UplinkdError('io', `${socketPath} exists and is not a socket; not removing it`);
  if (await answers(socketPath)) {
    throw new UplinkdError('io', `another uplinkd is running (it answers on ${socketPath})`);
  }
  fs.unlinkSync(socketPath);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}

function serve(conn: net.Socket, handlers: ControlHandlers, log: Logger): void {
  let buffer = '';
  let queue = Promise.resolve();
  conn.setEncoding('utf8');
  conn.on('error', () => conn.destroy());
  conn.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_REQUEST) {
      conn.destroy();
      return;
    }
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line === '') continue;
      // Answer in request order even when a reload takes a while.
      queue = queue.then(async () => {
        const response = await handle(line, handlers, log);
        if (!conn.destroyed) conn.write(JSON.stringify(response) + '\n');
      });
    }
  });
}

async function handle(line: string, handlers: ControlHandlers, log: Logger): Promise<ControlResponse> {
  let request: ControlRequest;
  try {
    request = JSON.parse(line) as ControlRequest;
  } catch {
    return { ok: false, code: 'usage', error: 'request is not JSON' };
  }
  try {
    switch (request.cmd) {
      case 'status':
        return { ok: true, result: handlers.status(request.view === 'text' ? 'text' : 'full') };
      case 'reload': {
        log.info('control', { cmd: 'reload' });
        const r = await handlers.reload();
        return r.ok ? { ok: true, result: { notes: r.notes ?? [], ...(r.cycle ? { cycle: r.cycle } : {}) } } : { ok: false, code: 'config', error: r.error };
      }
      case 'resync': {
        const cause = typeof request.cause === 'string' && request.cause !== '' ? request.cause.slice(0, 200) : 'control resync';
        handlers.resync(cause);
        return { ok: true };
      }
      default:
        return { ok: false, code: 'usage', error: `unknown command ${JSON.stringify((request as { cmd?: unknown }).cmd)}` };
    }
  } catch (err) {
    return { ok: false, code: err instanceof UplinkdError ? err.code : 'io', error: err instanceof Error ? err.message : String(err) };
  }
}
