// Hooks: every executable in the hooks directory runs on each uplink state change, in name
// order, one at a time, without a shell, with a timeout. Like networkd-dispatcher, files (and
// the directory) that are not owned by root or are writable by group or others are refused:
// a hook runs as root, so whoever can write it is root.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log';
import type { HealthChange } from './monitor';

export const HOOK_TIMEOUT_MS = 10_000;
/** The hooks' PATH: fixed, not the daemon's. */
export const HOOK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OUTPUT_LIMIT = 4096;

export type HookOutcome =
  | { file: string; status: 'ran'; exitCode: number | null; signal: NodeJS.Signals | null; timedOut: boolean; output: string }
  | { file: string; status: 'refused'; reason: string }
  | { file: string; status: 'failed'; reason: string };

export interface HookOptions {
  timeoutMs?: number;
  log?: Logger;
}

/** The environment a hook sees (documented in docs/health.md). */
export function hookEnvironment(change: HealthChange): Record<string, string> {
  return {
    PATH: HOOK_PATH,
    UPLINKD_UPLINK: change.uplink,
    UPLINKD_STATE: change.to,
    UPLINKD_OLD_STATE: change.from,
    UPLINKD_INTERFACE: change.endpoint?.interface ?? '',
    UPLINKD_ADDRESS: change.endpoint?.address ?? '',
    UPLINKD_GATEWAY: change.endpoint?.gateway ?? '',
    UPLINKD_REASON: change.reason,
  };
}

/** Why a hook file or the hooks directory may not be trusted, or undefined when it may. */
export function trustProblem(stat: Pick<fs.Stats, 'uid' | 'mode'>): string | undefined {
  if (stat.uid !== 0) return `owned by uid ${stat.uid}, not root`;
  if (stat.mode & 0o022) {
    const who = [stat.mode & 0o020 ? 'group' : '', stat.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
    return `writable by ${who} (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`;
  }
  return undefined;
}

/** Runs the hooks in `dir` one after another; a missing directory means no hooks. */
export async function runHooks(dir: string, env: Record<string, string>, options: HookOptions = {}): Promise<HookOutcome[]> {
  const log = options.log;
  let dirStat: fs.Stats;
  try {
    dirStat = await fs.promises.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    log?.warn('hooks', { dir, problem: `cannot read the hooks directory: ${(err as Error).message}` });
    return [];
  }
  const dirProblem = dirStat.isDirectory() ? trustProblem(dirStat) : 'not a directory';
  if (dirProblem) {
    log?.warn('hooks', { dir, problem: `refusing the hooks directory: ${dirProblem}` });
    return [{ file: dir, status: 'refused', reason: dirProblem }];
  }
  const names = (await fs.promises.readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  const outcomes: HookOutcome[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(file);
    } catch (err) {
      outcomes.push({ file, status: 'failed', reason: (err as Error).message });
      continue;
    }
    // Non-executables (a README, a disabled hook) are skipped silently, as by run-parts.
    if (!stat.isFile() || (stat.mode & 0o100) === 0) continue;
    const problem = trustProblem(stat);
    if (problem) {
      log?.warn('hook_refused', { hook: file, problem });
      outcomes.push({ file, status: 'refused', reason: problem });
      continue;
    }
    const outcome = await runOne(file, env, options.timeoutMs ?? HOOK_TIMEOUT_MS);
    if (outcome.status === 'ran') {
      const ok = outcome.exitCode === 0;
      const fields = {
        hook: file,
        uplink: env.UPLINKD_UPLINK,
        state: env.UPLINKD_STATE,
        exit: outcome.exitCode ?? undefined,
        signal: outcome.signal ?? undefined,
        timed_out: outcome.timedOut || undefined,
        output: outcome.output.trim() || undefined,
      };
      if (ok) log?.info('hook', fields);
      else log?.warn('hook', fields);
    } else {
      log?.warn('hook', { hook: file, problem: outcome.reason });
    }
    outcomes.push(outcome);
  }
  return outcomes;
}

/** Runs hook batches in the order of the changes, never two at once. */
export class HookQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** `dir` is read at each change, so a reloaded config's directory takes effect. */
  constructor(
    private readonly dir: () => string,
    private readonly options: HookOptions = {},
  ) {}

  /**
   * Runs the hook directory's executables for `change` once every earlier batch has finished; resolves with each
   * hook's outcome (a failing or timed-out hook is an outcome, logged, not a rejection).
   */
  run(change: HealthChange): Promise<HookOutcome[]> {
    const next = this.tail.then(() => runHooks(this.dir(), hookEnvironment(change), this.options));
    this.tail = next.catch(() => undefined);
    return next;
  }
}

function runOne(file: string, env: Record<string, string>, timeoutMs: number): Promise<HookOutcome> {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    // Its own process group, so that a timeout kills what the hook started too.
    const child = spawn(file, [], { env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const collect = (chunk: Buffer) => {
      if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8').slice(0, OUTPUT_LIMIT - output.length);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    let done = false;
    let grace: NodeJS.Timeout | undefined;
    const finish = (outcome: HookOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(outcome);
    };
    child.once('error', (err) => finish({ file, status: 'failed', reason: err.message }));
    child.once('exit', (exitCode, signal) => {
      const ran = () => finish({ file, status: 'ran', exitCode, signal, timedOut, output });
      child.once('close', ran);
      // A hook that leaves a background child holding its output must not stall the queue.
      grace = setTimeout(ran, 200);
    });
  });
}
