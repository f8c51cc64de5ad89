// Running programs for the lab: argv only (no shell), with a timeout and the
// output collected, optionally inside a network namespace via `ip netns exec`.
import { spawn, type ChildProcess } from 'node:child_process';
import { UplinkdError } from '../src/errors';

/**
 * uplinkd's runtime directory (UPLINKD_RUNTIME_DIR: the daemon's socket records, src/daemon/socket-record.ts)
 * for everything the lab runs, so lab daemons never write to the host's /run/uplinkd.
 */
export const LAB_RUNTIME_DIR = '/run/uplinkd-lab/run';

/** This process's environment with UPLINKD_RUNTIME_DIR set to LAB_RUNTIME_DIR, plus `extra`. */
export function labEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, UPLINKD_RUNTIME_DIR: LAB_RUNTIME_DIR, ...extra };
}

export interface RunOptions {
  /** Kill the process (SIGKILL) after this many ms; default 20 s. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Resolve with the result instead of throwing when the exit code is not 0. */
  allowFail?: boolean;
  /** Default: labEnv(). */
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  /** Exit code; null when killed by a signal (e.g. the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Quotes an argv for messages only; nothing is ever run through a shell. */
export function showCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Runs `cmd args` (no shell) with `opts.input` on stdin; killed (SIGKILL) after `opts.timeoutMs` (default 20 000 ms).
 * Resolves with exit code and output; rejects with UplinkdError('lab') when it cannot start, times out or exits
 * non-zero, unless `opts.allowFail`.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? labEnv() });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new UplinkdError('lab', `cannot run ${showCommand(cmd, args)}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result: RunResult = { code, stdout, stderr, timedOut };
      if ((code === 0 && !timedOut) || opts.allowFail) return resolve(result);
      const why = timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${code}`;
      reject(new UplinkdError('lab', `${showCommand(cmd, args)} ${why}: ${stderr.trim() || stdout.trim()}`));
    });
    child.stdin.on('error', () => undefined); // the program may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** argv prefix that runs a program inside namespace `ns`. */
export function nsArgv(ns: string, cmd: string, args: readonly string[]): string[] {
  return ['netns', 'exec', ns, cmd, ...args];
}

/** Runs `cmd args` inside network namespace `ns` (`ip netns exec`, which also bind-mounts /etc/netns/<ns>/*). */
export function inNs(ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', nsArgv(ns, cmd, args), opts);
}

/** `ip -n <ns> <args>`: iproute2 commands inside a namespace without a mount namespace per call. */
export function ipIn(ns: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['-n', ns, ...args], opts);
}

/** Parsed `ip -j ...` output inside a namespace. */
export async function ipJson<T = unknown>(ns: string, args: readonly string[]): Promise<T[]> {
  const r = await ipIn(ns, ['-j', ...args]);
  const text = r.stdout.trim();
  return text === '' ? [] : (JSON.parse(text) as T[]);
}

/**
 * Starts a long-running program inside `ns` and waits until its stdout shows `readyLine`
 * (a regular expression). Resolves with the child and the matched line.
 */
export function startInNs(
  ns: string,
  cmd: string,
  args: readonly string[],
  readyLine: RegExp,
  timeoutMs = 10_000,
): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', nsArgv(ns, cmd, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let ready = false;
    const fail = (why: string) => {
      if (ready) return;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new UplinkdError('lab', `${showCommand(cmd, args)} in ${ns} ${why}: ${err.trim()}`));
    };
    const timer = setTimeout(() => fail(`was not ready after ${timeoutMs} ms`), timeoutMs);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout!.setEncoding('utf8').on('data', function onData(d: string) {
      out += d;
      const m = out.split('\n').find((l) => readyLine.test(l));
      if (m === undefined) return;
      ready = true;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve({ child, line: m });
    });
    child.on('error', (e) => fail(`could not start (${e.message})`));
    child.on('exit', (code) => fail(`exited with ${code} before it was ready`));
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new UplinkdError('lab', `timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
