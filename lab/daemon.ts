// Running `uplinkd run` inside a namespace (the lab's router, a benchmark's) and reading its log,
// for the demo, the tests and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import type { LogLevel } from '../src/log';
import { leaseGlob } from './dhcp';
import { renderLabConfig } from './config';
import { labEnv, nsArgv, waitFor } from './exec';
import { UPLINKD_BIN } from './inspect';
import type { LabInfo } from './topology';

export interface RunningDaemon {
  child: ChildProcess;
  /** stderr lines (the structured log) so far. */
  lines: string[];
}

/** The lab config plus the daemon's socket and the lease globs of the clients the lab may use. */
export function daemonConfig(lab: LabInfo, socket: string, extra = ''): string {
  const globs = [leaseGlob('dhclient', lab.stateDir), leaseGlob('udhcpc', lab.stateDir), leaseGlob('dhcpcd', lab.stateDir)];
  const text = renderLabConfig({ ...lab, leaseGlobs: globs }, { controlSocket: socket });
  return `${text}daemon:\n  debounce: 5ms\n  resync_interval: 5s\n${extra}`;
}

/** How startDaemon runs the daemon beyond `run -c config`. */
export interface DaemonStartOptions {
  /** More arguments of `uplinkd run` (`--cleanup`). */
  runArgs?: string[];
  /**
   * Mount cgroup v2 at /sys/fs/cgroup first, for `exec:` (`ip netns exec` gives the command a fresh /sys without
   * the host's cgroup mounts, in a mount namespace of its own: the mount goes with it).
   */
  cgroup2?: boolean;
}

/**
 * Starts `uplinkd run -c config` in namespace `ns` (logging at `level`); resolves once it logged readiness.
 * `ip netns exec` (and the shell of `cgroup2`) exec node in place, so `child.pid` is the daemon's pid.
 */
export async function startDaemon(ns: string, config: string, onLine?: (line: string) => void, level: LogLevel = 'info', opts: DaemonStartOptions = {}): Promise<RunningDaemon> {
  const argv = [process.execPath, UPLINKD_BIN, 'run', '-c', config, ...(opts.runArgs ?? [])];
  const command = opts.cgroup2 ? ['sh', '-c', 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"', 'sh', ...argv] : argv;
  const child = spawn('ip', nsArgv(ns, command[0]!, command.slice(1)), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: labEnv({ UPLINKD_LOG_LEVEL: level }),
  });
  const d: RunningDaemon = { child, lines: [] };
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    d.lines.push(...parts);
    if (onLine) parts.forEach(onLine);
  });
  child.stdout!.resume();
  // generous: in the full-kernel guest on a busy machine node alone takes seconds to start
  await waitForLine(d, /event=ready/, 60_000);
  return d;
}

/** Sends `signal` and waits for the exit; a daemon still running 5 s later is killed. */
export async function stopDaemon(d: RunningDaemon, signal: NodeJS.Signals): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  const exited = new Promise((resolve) => d.child.once('exit', resolve));
  d.child.kill(signal);
  const killer = setTimeout(() => d.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
}

/**
 * The first log line of the daemon matching `pattern`, polled every 20 ms for up to `timeoutMs` milliseconds.
 * Throws if the daemon exits first (with its log), UplinkdError('lab') on timeout.
 */
export async function waitForLine(d: RunningDaemon, pattern: RegExp, timeoutMs: number): Promise<string> {
  return waitFor(`log line ${pattern}`, async () => {
    if (d.child.exitCode !== null) throw new Error(`uplinkd exited with ${d.child.exitCode}:\n${d.lines.join('\n')}`);
    return d.lines.find((l) => pattern.test(l));
  }, timeoutMs, 20);
}
