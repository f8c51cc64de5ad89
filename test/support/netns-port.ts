// A KernelPort whose NetlinkKernelPort runs inside another network namespace. A netlink socket
// belongs to the namespace of the process that opened it and Node has no setns(), so the port runs
// in a child (`ip netns exec NS node netns-child.js`) and this class forwards calls as JSON lines.
// For root tests and lab tooling; the daemon itself runs in its namespace and uses NetlinkKernelPort.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { UplinkdError, type ErrorCode } from '../../src/errors';
import type { Change, KernelState, Nexthop, Route } from '../../src/model/types';
import type { ChildMessage, ChildRequest } from './netns-child';
import type { NetlinkPortOptions } from '../../src/kernel/netlink-port';
import type { KernelEvent, KernelPort, RouteInterest } from '../../src/kernel/port';

type Waiter = { resolve(v: unknown): void; reject(e: Error): void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * A KernelPort inside network namespace `netns`: a child process there runs NetlinkKernelPort and this class forwards
 * calls to it as JSON lines. Rejections keep the child's UplinkdError code; if the child exits, every pending and later
 * call rejects with UplinkdError('io') quoting its stderr.
 */
export class NetnsKernelPort implements KernelPort {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private readonly subscribers = new Map<number, { onEvent(e: KernelEvent): void; onOverrun(reason?: string): void }>();
  private exited: Error | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly netns: string) {
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    createInterface({ input: child.stdout }).on('line', (line) => this.onLine(line));
    child.on('exit', (code, signal) => {
      this.exited = new UplinkdError('io', `port child in ${netns} exited (${signal ?? code}): ${stderr.trim()}`);
      for (const w of this.waiting.values()) w.reject(this.exited);
      this.waiting.clear();
    });
  }

  /** Start the child in `netns` and wait until its port has read the interface map. `options` go to its NetlinkKernelPort. */
  static async open(netns: string, options: Pick<NetlinkPortOptions, 'timeoutMs' | 'cache'> = {}): Promise<NetnsKernelPort> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, join(__dirname, 'netns-child.js'), JSON.stringify(options)],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    const port = new NetnsKernelPort(child, netns);
    try {
      await port.call({ method: 'snapshot' });
    } catch (e) {
      port.close();
      throw e;
    }
    return port;
  }

  /** The namespace's kernel state, as NetlinkKernelPort.snapshot() reads it there. */
  snapshot(interest?: RouteInterest): Promise<KernelState> {
    return this.call({ method: 'snapshot', ...(interest ? { interest } : {}) }) as Promise<KernelState>;
  }

  /** The nexthops and the routes through the devices of `ids` in the namespace, as NetlinkKernelPort.nexthopUsers() reads them there. */
  nexthopUsers(ids: readonly number[]): Promise<{ nexthops: Nexthop[]; routes: Route[] }> {
    return this.call({ method: 'nexthopUsers', ids: [...ids] }) as Promise<{ nexthops: Nexthop[]; routes: Route[] }>;
  }

  /** NetlinkKernelPort.routeNotifications of the child's port: route notifications its subscriber socket received. */
  routeNotifications(): Promise<number> {
    return this.call({ method: 'routeNotifications' }) as Promise<number>;
  }

  /** Applies one change in the namespace (EEXIST on add, ENOENT/ESRCH on del tolerated as in NetlinkKernelPort). */
  async apply(change: Change): Promise<void> {
    await this.call({ method: 'apply', change });
  }

  /** Events carry `at` from this process's clock (time of receipt). Active once a later call answers. */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: (reason?: string) => void): () => void {
    const id = this.nextId; // call() takes this id
    this.subscribers.set(id, { onEvent, onOverrun });
    void this.call({ method: 'subscribe' }).catch(() => undefined);
    return () => {
      this.subscribers.delete(id);
      if (!this.exited) void this.call({ method: 'unsubscribe', sub: id }).catch(() => undefined);
    };
  }

  /** Ends the child (stdin closed; SIGKILL after 2 s if it has not exited). */
  close(): void {
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    t.unref();
    this.child.once('exit', () => clearTimeout(t));
  }

  private call(req: DistributiveOmit<ChildRequest, 'id'>): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  private onLine(line: string): void {
    const m = JSON.parse(line) as ChildMessage;
    if ('sub' in m) {
      const s = this.subscribers.get(m.sub);
      if (s && 'overrun' in m) s.onOverrun(m.reason);
      else if (s && 'event' in m) s.onEvent({ ...(m.event as KernelEvent), at: performance.now() });
      return;
    }
    const w = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    if (!w) return;
    if (m.error) {
      const { code, message, errno, kernelMessage } = m.error;
      w.reject(new UplinkdError(code as ErrorCode, message, { errno, ...(kernelMessage ? { kernelMessage } : {}) }));
    } else w.resolve(m.result);
  }
}
