// One daemon per routing protocol number per network namespace. The control socket's file cannot
// guarantee it (someone removes the file, or two configs name two sockets), and two daemons
// managing the same protocol's routes, rules and nexthops undo each other's changes forever. The
// lock is a unix socket in the abstract namespace (unix(7)): it belongs to the network namespace,
// has no file to remove, and the kernel releases it when the process ends, even by SIGKILL.
import { once } from 'node:events';
import * as net from 'node:net';
import { UplinkdError } from '../errors';

/** The lock's abstract socket name for `protocol` (a leading NUL selects the abstract namespace). */
export function instanceLockName(protocol: number): string {
  return `\0uplinkd/protocol/${protocol}`;
}

/** A held lock; release() lets another daemon start. */
export interface InstanceLock {
  release(): Promise<void>;
}

/**
 * Takes this network namespace's lock for routing protocol `protocol` (0-255, rtm_protocol): an
 * abstract unix socket that answers each connection with the holder's pid. Throws
 * UplinkdError('io') naming the holder's pid when another process holds it, or the bind error.
 */
export async function holdInstanceLock(protocol: number): Promise<InstanceLock> {
  const name = instanceLockName(protocol);
  const server = net.createServer((conn) => conn.end(`${process.pid}\n`));
  try {
    server.listen(name);
    await once(server, 'listening'); // rejects with the 'error' event's error (EADDRINUSE, EACCES)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
      throw new UplinkdError('io', `cannot take the instance lock for protocol ${protocol}: ${(err as Error).message}`, { cause: err });
    }
    const { pid } = await askHolder(name);
    throw new UplinkdError('io', `another uplinkd${pid ? ` (pid ${pid})` : ''} manages routing protocol ${protocol} in this network namespace; stop it first`);
  }
  server.unref(); // the lock alone must not keep the process alive
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * Whether a daemon holds this network namespace's lock for routing protocol `protocol` (0-255) now, for the CLI's
 * `down` and `apply`: `{ pid }` (the pid it answers with; undefined when it does not answer within 1 s) when one
 * does, undefined when none does (the abstract name is not bound: ECONNREFUSED). Never throws.
 */
export async function instanceLockHolder(protocol: number): Promise<{ pid?: string } | undefined> {
  const r = await askHolder(instanceLockName(protocol));
  return r.held ? (r.pid !== undefined ? { pid: r.pid } : {}) : undefined;
}

/** Connects to the lock `name`: held (something accepted the connection) and the pid it answered with, if any within 1 s. */
function askHolder(name: string): Promise<{ held: boolean; pid?: string }> {
  return new Promise((resolve) => {
    let text = '';
    let connected = false;
    const conn = net.connect(name);
    const done = (pid: string | undefined) => {
      conn.destroy();
      resolve({ held: connected, ...(pid !== undefined ? { pid } : {}) });
    };
    conn.on('connect', () => (connected = true));
    conn.setTimeout(1000, () => done(undefined));
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (text += d));
    conn.on('end', () => done(/^\d+$/.test(text.trim()) ? text.trim() : undefined));
    // ECONNREFUSED: nobody holds the name. Another error after connecting: held, no answer.
    conn.on('error', () => done(undefined));
  });
}
