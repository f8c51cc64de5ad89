// The client side of the daemon's control socket (src/daemon/control.ts serves it): one JSON request
// line out, one JSON answer line back. The CLI asks through the small addon in src/daemon/native
// (connect, send, recv, blocking, with a deadline): a short `uplinkd status` spent most of its own time
// loading node:net and the stream modules under it, and a blocking exchange needs no event loop, so the
// process ends as soon as it printed (docs/benchmarks.md, section 6). Without the addon, and for callers
// with other work on their event loop (tests, the lab), node:net.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../errors';
import type { ControlRequest, ControlResponse } from './control';

interface ControlAddon {
  /**
   * Connects to the unix socket `path`, sends `request` and returns the first line of the answer (without its
   * '\n'), within `timeoutMs` ms in all. Throws Error with .code an errno name (ETIMEDOUT, EPROTO: closed first).
   */
  query(path: string, request: string, timeoutMs: number): string;
}

const ADDON_FILE = 'uplinkd_control.node';

let addon: ControlAddon | null | undefined;

/** The addon beside the sources (dist/src/daemon -> src/daemon/native/build), or null when absent or unloadable. */
function load(): ControlAddon | null {
  if (addon !== undefined) return addon;
  const file = [
    path.resolve(__dirname, '../../../src/daemon/native/build/Release', ADDON_FILE),
    path.resolve(__dirname, 'native/build/Release', ADDON_FILE),
  ].find((p) => fs.existsSync(p));
  try {
    addon = file ? (require(file) as ControlAddon) : null;
  } catch {
    addon = null;
  }
  return addon;
}

/**
 * How a request travels: 'blocking' through the addon, 'net' through node:net. Blocking suits the CLI, which
 * has nothing else to do meanwhile; a process with other work on its event loop (one that serves the socket
 * itself, or reads the daemon's log pipe, which a blocked reader could let fill) uses 'net'.
 */
export type ControlTransport = 'blocking' | 'net';

/** The CLI's transport: 'blocking' when the addon loads, else 'net'. */
export function defaultTransport(): ControlTransport {
  return load() ? 'blocking' : 'net';
}

/**
 * Sends one request to the running daemon on the unix socket `socketPath` and returns its `result`, waiting at
 * most `timeoutMs` milliseconds for the whole exchange. Throws UplinkdError('io') when no daemon answers (no
 * socket, nobody listening: "not running", with `errno`), it does not answer in time, it closes without
 * answering or answers with something other than a JSON line; UplinkdError(code) with the daemon's message
 * when it refuses (e.g. 'config' for a rejected reload).
 */
export async function queryDaemon(socketPath: string, request: ControlRequest, timeoutMs = 30_000,
  transport: ControlTransport = 'net'): Promise<unknown> {
  const a = transport === 'blocking' ? load() : null;
  if (transport === 'blocking' && !a) throw new UplinkdError('io', `${ADDON_FILE} is not built (npm run build:native)`);
  const line = a ? blockingExchange(a, socketPath, `${JSON.stringify(request)}\n`, timeoutMs) : await netExchange(socketPath, request, timeoutMs);
  let response: ControlResponse;
  try {
    response = JSON.parse(line) as ControlResponse;
  } catch {
    throw new UplinkdError('io', `malformed answer on ${socketPath}`);
  }
  if (!response.ok) throw new UplinkdError(response.code, response.error);
  return response.result;
}

function blockingExchange(a: ControlAddon, socketPath: string, request: string, timeoutMs: number): string {
  try {
    return a.query(socketPath, request, timeoutMs);
  } catch (err) {
    throw exchangeError(err as NodeJS.ErrnoException, socketPath, timeoutMs);
  }
}

/** The same failures in the same words, whichever transport met them. */
function exchangeError(err: NodeJS.ErrnoException, socketPath: string, timeoutMs: number): UplinkdError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new UplinkdError('io', `uplinkd is not running (no daemon on ${socketPath})`, { errno: err.code });
    case 'ETIMEDOUT':
      return new UplinkdError('io', `uplinkd did not answer on ${socketPath} within ${timeoutMs} ms`);
    case 'EPROTO':
      return new UplinkdError('io', `uplinkd closed ${socketPath} without answering`);
    default:
      return new UplinkdError('io', `cannot reach uplinkd on ${socketPath}: ${err.message}`, { errno: err.code });
  }
}

/** The first answer line through node:net (loaded only here). */
async function netExchange(socketPath: string, request: ControlRequest, timeoutMs: number): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath);
    let buffer = '';
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      conn.destroy();
      fn();
    };
    const fail = (code: string, message = code) => finish(() => reject(exchangeError(Object.assign(new Error(message), { code }), socketPath, timeoutMs)));
    const timer = setTimeout(() => fail('ETIMEDOUT'), timeoutMs);
    conn.setEncoding('utf8');
    conn.once('connect', () => conn.write(`${JSON.stringify(request)}\n`));
    conn.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl >= 0) finish(() => resolve(buffer.slice(0, nl)));
    });
    conn.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'EIO', err.message));
    conn.once('end', () => fail('EPROTO'));
  });
}
