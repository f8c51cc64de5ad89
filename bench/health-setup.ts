// Shared by the health benchmarks: the namespace lab (lab/) under the benchmarks' `ulb-`
// prefix and state root, with the second probe target, and `uplinkd run` monitoring both
// uplinks with the default settings. Not a benchmark itself.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { startDaemon, stopDaemon, type RunningDaemon } from '../lab/daemon';
import { waitFor } from '../lab/exec';
import { addSecondTarget, healthDaemonConfig, waitForDefault, waitForVerdict } from '../lab/health';
import { labDown, labUp } from '../lab/lab';
import type { LabInfo } from '../lab/topology';
import { parseLine, type LogLevel } from '../src/log';
import { STATE_ROOT } from './netns';

export interface HealthLab {
  lab: LabInfo;
  socket: string;
  daemon: RunningDaemon | undefined;
  /** (Re)starts the daemon (logging at `level`), monitoring both uplinks or none; waits until both are up and in the default. */
  start(monitor: boolean, level?: LogLevel): Promise<RunningDaemon>;
  stopDaemon(): Promise<void>;
  /** Stops the daemon and removes the lab. */
  close(): Promise<void>;
}

/** Builds lab `ulb-<short>-` (short: a few letters). */
export async function healthLab(short: string): Promise<HealthLab> {
  const prefix = `ulb-${short}-`;
  await labDown(prefix, STATE_ROOT);
  const lab = await labUp({ prefix, stateRoot: STATE_ROOT });
  const socket = path.join(lab.stateDir, 'control.sock');
  const h: HealthLab = {
    lab,
    socket,
    daemon: undefined,
    async start(monitor, level = 'info') {
      await h.stopDaemon();
      await addSecondTarget(lab);
      const config = path.join(lab.stateDir, monitor ? 'health.yaml' : 'plain.yaml');
      await fs.writeFile(config, healthDaemonConfig(lab, socket, monitor ? {} : { monitored: [] }));
      h.daemon = await startDaemon(lab.ns.router, config, undefined, level);
      if (monitor) {
        await waitForVerdict(socket, 'isp1', 'up', 10_000);
        await waitForVerdict(socket, 'isp2', 'up', 10_000);
      }
      await waitForDefault(lab, ['isp1', 'isp2'], 10_000);
      return h.daemon;
    },
    async stopDaemon() {
      if (h.daemon) await stopDaemon(h.daemon, 'SIGTERM');
      h.daemon = undefined;
    },
    async close() {
      await h.stopDaemon().catch(() => undefined);
      await labDown(prefix, STATE_ROOT);
    },
  };
  return h;
}

export interface LogHit {
  /** Index in the daemon's lines. */
  index: number;
  /** The line's own timestamp (epoch ms, the daemon's clock: the same system clock as ours). */
  ts: number;
  fields: Record<string, string>;
}

/** The first log line at or after `from` matching `pattern`; waits up to timeoutMs for it. */
export async function lineAfter(d: RunningDaemon, from: number, pattern: RegExp, timeoutMs: number): Promise<LogHit> {
  return waitFor(`log line ${pattern}`, async () => {
    if (d.child.exitCode !== null) throw new UplinkdError('lab', `uplinkd exited with ${d.child.exitCode}:\n${d.lines.slice(-30).join('\n')}`);
    for (let i = from; i < d.lines.length; i++) {
      if (!pattern.test(d.lines[i])) continue;
      const fields = parseLine(d.lines[i]);
      return { index: i, ts: Date.parse(fields.ts), fields };
    }
    return undefined;
  }, timeoutMs, 5);
}

/** Log lines from `from` on that match. */
export function linesSince(d: RunningDaemon, from: number, pattern: RegExp): Record<string, string>[] {
  return d.lines.slice(from).filter((l) => pattern.test(l)).map(parseLine);
}
