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
    const pid = await holderPid(name);
    throw new UplinkdError('io', `another uplinkd${pid ? ` (pid ${pid})` : ''} manages routing protocol ${protocol} in this network namespace; stop it first`);
  }
  server.unref(); // the lock alone must not keep the process alive
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The pid the lock's holder answers with, or undefined when it does not answer within 1 s. */
function holderPid(name: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const conn = net.connect(name);
    const done = (pid: string | undefined) => {
      conn.destroy();
      resolve(pid);
    };
    conn.setTimeout(1000, () => done(undefined));
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (text += d));
    conn.on('end', () => done(/^\d+$/.test(text.trim()) ? text.trim() : undefined));
    conn.on('error', () => done(undefined));
  });
}
