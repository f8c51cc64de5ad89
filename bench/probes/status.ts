// Runs inside a benchmark router namespace: times whole `uplinkd status` processes (node start-up,
// module loading, config, then the daemon's answer or a one-shot plan) and, for scale, `node -e 0`.
// Prints one JSON line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { UplinkdError } from '../../src/errors';

export interface StatusArgs {
  config: string;
  uplinkdBin: string;
  warmup: number;
  iterations: number;
  /**
   * Also time `status` made to find the socket by parsing the file (UPLINKD_RUNTIME_DIR naming an empty
   * directory, so there is no socket record): the path every status took before the records (issue 7).
   */
  parsed: boolean;
  /**
   * Environment variables removed for every timed process (status and `node -e 0` alike): NODE_EXTRA_CA_CERTS,
   * which makes Node read and parse a CA bundle before any script runs, where the environment sets it.
   */
  unset?: string[];
}

export interface StatusResult {
  /** ms per `node bin/uplinkd status -c CONFIG`, wall time of the whole process */
  status: number[];
  /** ms per `node -e 0` */
  node: number[];
  /** ms per `status` that parsed the file to find the socket (when StatusArgs.parsed) */
  parsed: number[];
  /** Module files (ours, npm's, addons) one run of each loads: NODE_DEBUG=module's `load` lines. */
  modules: { status: number; parsed?: number; node: number };
  /**
   * Node's own built-in modules one run of each loads beyond those `node -e 0` loads (process.moduleLoadList's
   * `NativeModule` entries at exit): node:net and the stream modules under it, for instance.
   */
  builtins: { status: number; parsed?: number };
  /** whether the answer came from a running daemon (its status text) or from a one-shot plan */
  fromDaemon: boolean;
}

/** Prints, at exit, the built-in modules the process loaded (a preload for the counting runs only). */
const LIST_BUILTINS = `process.on('exit', () => process._rawDebug('BUILTINS ' + JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')))));\n`;

/**
 * What one run of `node ARGS` loads: its distinct module files (NODE_DEBUG=module prints `MODULE pid: load "FILE"
 * for module ...`) and, in a second run without NODE_DEBUG (whose lines make process.stderr, and so load the stream
 * modules), Node's built-in modules (the preload LIST_BUILTINS, stdout and stderr pipes as in the timed runs).
 */
function modulesLoaded(args: string[], env: NodeJS.ProcessEnv, preload: string): { files: number; builtins: string[] } {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, NODE_DEBUG: 'module' } });
  const files = new Set([...r.stderr.matchAll(/^MODULE \d+: load "([^"]+)" for module/gm)].map((m) => m[1]));
  const b = spawnSync(process.execPath, ['--require', preload, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  const builtins = /^BUILTINS (.*)$/m.exec(b.stderr)?.[1];
  if (builtins === undefined) throw new UplinkdError('lab', `${args.join(' ')}: no list of built-in modules: ${b.stderr.slice(-500)}`);
  return { files: files.size, builtins: JSON.parse(builtins) as string[] };
}

function timed(args: string[], env: NodeJS.ProcessEnv): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new UplinkdError('lab', `${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function main(args: StatusArgs): StatusResult {
  const out: StatusResult = { status: [], node: [], parsed: [], fromDaemon: false, modules: { status: 0, node: 0 }, builtins: { status: 0 } };
  const noRecords = mkdtempSync(path.join(os.tmpdir(), 'uplinkd-no-records-'));
  const status = [args.uplinkdBin, 'status', '-c', args.config];
  const env = { ...process.env };
  for (const name of args.unset ?? []) delete env[name];
  const parsedEnv = { ...env, UPLINKD_RUNTIME_DIR: noRecords };
  try {
    const preload = path.join(noRecords, 'list-builtins.js');
    writeFileSync(preload, LIST_BUILTINS);
    const node = modulesLoaded(['-e', '0'], env, preload);
    const beyond = (m: { builtins: string[] }) => m.builtins.filter((b) => !node.builtins.includes(b)).length;
    const st = modulesLoaded(status, env, preload);
    const parsed = args.parsed ? modulesLoaded(status, parsedEnv, preload) : undefined;
    out.modules = { status: st.files, ...(parsed ? { parsed: parsed.files } : {}), node: node.files };
    out.builtins = { status: beyond(st), ...(parsed ? { parsed: beyond(parsed) } : {}) };
    for (let i = 0; i < args.warmup + args.iterations; i++) {
      const s = timed(status, env);
      const n = timed(['-e', '0'], env);
      const p = args.parsed ? timed(status, parsedEnv) : undefined;
      if (i < args.warmup) continue;
      out.status.push(s.ms);
      out.node.push(n.ms);
      if (p) out.parsed.push(p.ms);
      // src/daemon/status-text.ts; the one-shot text says 'not running'
      out.fromDaemon = /^daemon: running/m.test(s.stdout) && (!p || /^daemon: running/m.test(p.stdout));
    }
  } finally {
    rmSync(noRecords, { recursive: true, force: true });
  }
  return out;
}

try {
  process.stdout.write(`${JSON.stringify(main(JSON.parse(process.argv[2] ?? '{}') as StatusArgs))}\n`);
} catch (e) {
  process.stderr.write(`status probe: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
}
