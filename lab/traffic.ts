// Real traffic in the lab's namespaces: a TCP server that answers with the peer
// address it saw, a client that tallies those answers over many flows, and ping.
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { Ipv4 } from '../src/model/types';
import { UplinkdError } from '../src/errors';
import { inNs, startInNs } from './exec';

const ECHO_SCRIPT = path.join(__dirname, 'tcp-echo.js');
const TALLY_SCRIPT = path.join(__dirname, 'tcp-tally.js');

export const ECHO_PORT = 8080;

export interface TcpServer {
  ns: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts tcp-echo in `ns` listening on `host` (default all addresses, e.g. every uplink
 * address of the router). The process lives in the namespace, so labDown ends it too.
 */
export async function startTcpEcho(ns: string, port = ECHO_PORT, host = '0.0.0.0'): Promise<TcpServer> {
  // generous: node takes seconds to start in the full-kernel guest on a busy machine
  const { child } = await startInNs(ns, process.execPath, [ECHO_SCRIPT, '--port', String(port), '--host', host], /^listening /, 60_000);
  return { ns, port, pid: child.pid ?? -1, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface Tally {
  /** Source address the server saw -> number of flows. */
  seen: Record<string, number>;
  failed: number;
  /** Error code (ECONNREFUSED, timeout, ...) -> count. */
  errors: Record<string, number>;
}

export interface TallyOptions {
  count?: number;
  /** The local address every connection is bound to (bind(2) before connect). */
  source?: Ipv4;
  concurrency?: number;
  /** Per connection. */
  timeoutMs?: number;
}

/** Opens `count` short TCP flows from `ns` to target:port and tallies which source address the server saw. */
export async function tcpTally(ns: string, target: Ipv4, port = ECHO_PORT, opts: TallyOptions = {}): Promise<Tally> {
  const count = opts.count ?? 1;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const concurrency = opts.concurrency ?? 16;
  const r = await inNs(
    ns,
    process.execPath,
    [TALLY_SCRIPT, '--target', target, '--port', String(port), '--count', String(count), '--concurrency', String(concurrency), '--timeout-ms', String(timeoutMs),
      ...(opts.source ? ['--source', opts.source] : [])],
    { timeoutMs: 10_000 + Math.ceil(count / concurrency) * timeoutMs },
  );
  try {
    return JSON.parse(r.stdout) as Tally;
  } catch {
    throw new UplinkdError('lab', `tcp-tally printed no tally: ${r.stdout.trim()} ${r.stderr.trim()}`);
  }
}

/** One TCP connection from `ns`: the source address the server saw, or undefined when it failed. */
export async function tcpProbe(ns: string, target: Ipv4, port = ECHO_PORT, timeoutMs = 2000): Promise<string | undefined> {
  const t = await tcpTally(ns, target, port, { count: 1, timeoutMs });
  return Object.keys(t.seen)[0];
}

/** True when at least one of `count` echo requests from `ns` to `target` was answered. */
export async function ping(ns: string, target: Ipv4, opts: { count?: number; waitSec?: number; source?: Ipv4 } = {}): Promise<boolean> {
  const count = opts.count ?? 2;
  const args = ['-n', '-q', '-c', String(count), '-i', '0.2', '-W', String(opts.waitSec ?? 1)];
  if (opts.source) args.push('-I', opts.source);
  const r = await inNs(ns, 'ping', [...args, target], { allowFail: true, timeoutMs: 5000 + count * 2000 });
  return r.code === 0;
}

/** Flows per uplink: the tally's addresses mapped to uplink names (unknown addresses under their own key). */
export function flowsPerUplink(tally: Tally, uplinks: readonly { name: string; address: Ipv4 }[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(uplinks.map((u) => [u.name, 0]));
  for (const [addr, n] of Object.entries(tally.seen)) {
    const u = uplinks.find((x) => x.address === addr);
    const key = u ? u.name : addr;
    out[key] = (out[key] ?? 0) + n;
  }
  return out;
}
