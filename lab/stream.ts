// Long-lived TCP streams in the lab (tcp-stream.js): an echoing server and a client that keeps
// one connection busy and reports how many bytes came back, for tests that must see a flow
// survive a failover.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import type { Ipv4 } from '../src/model/types';
import { nsArgv, startInNs } from './exec';

const STREAM_SCRIPT = path.join(__dirname, 'tcp-stream.js');

export const STREAM_PORT = 8090;

export interface StreamProgress {
  sent: number;
  received: number;
}

/** How the stream ended: an error (e.g. ECONNRESET), the peer closing, or stop(). */
export interface StreamEnd extends StreamProgress {
  event: 'error' | 'closed' | 'stopped';
  error?: string;
}

export interface Stream {
  /** The source address the server saw (the uplink's address after NAT). */
  peer: string;
  /** Connections opened until one was seen as the wanted address. */
  attempts: number;
  latest(): StreamProgress;
  /** Undefined while the stream runs. */
  end(): StreamEnd | undefined;
  stop(): Promise<StreamEnd>;
}

/** The echoing stream server in `ns` (the internet host); it lives in the namespace, so labDown ends it too. */
export async function startStreamServer(ns: string, port = STREAM_PORT): Promise<{ stop(): void }> {
  const { child } = await startInNs(ns, process.execPath, [STREAM_SCRIPT, 'serve', '--port', String(port)], /^listening /);
  return { stop: () => void child.kill('SIGTERM') };
}

/** Opens a stream from `ns` to target:port that the server sees as coming from `want` (tries new connections until then). */
export function openStream(ns: string, target: Ipv4, want: Ipv4, port = STREAM_PORT, timeoutMs = 30_000): Promise<Stream> {
  const child = spawn('ip', nsArgv(ns, process.execPath, [STREAM_SCRIPT, 'connect', '--target', target, '--port', String(port), '--want', want]), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let progress: StreamProgress = { sent: 0, received: 0 };
  let ended: StreamEnd | undefined;
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`no stream seen as ${want} after ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new UplinkdError('lab', `tcp-stream from ${ns} to ${target}:${port}: ${why} ${stderr.trim()}`));
    };
    let partial = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = JSON.parse(line) as { event: string; peer?: string; attempts?: number; error?: string } & StreamProgress;
        if (m.event === 'open') {
          clearTimeout(timer);
          resolve(handle(child, m.peer!, m.attempts!, () => progress, () => ended, exited));
        } else if (m.event === 'progress') progress = { sent: m.sent, received: m.received };
        else {
          ended = { event: m.event as StreamEnd['event'], sent: m.sent ?? progress.sent, received: m.received ?? progress.received, ...(m.error && { error: m.error }) };
          if (m.sent === undefined) fail(m.error ?? m.event);
        }
      }
    });
    child.on('exit', (code) => {
      if (!ended) fail(`exited with ${code}`);
    });
  });
}

function handle(
  child: ChildProcess,
  peer: string,
  attempts: number,
  latest: () => StreamProgress,
  end: () => StreamEnd | undefined,
  exited: Promise<void>,
): Stream {
  return {
    peer,
    attempts,
    latest,
    end,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      return end() ?? { event: 'stopped', ...latest() };
    },
  };
}
