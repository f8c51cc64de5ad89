// The benchmarks' own network namespaces (all named `ulb-...`), the processes they start in
// them, and their removal on every exit path. Nothing here touches the host namespace.
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { inNs, ipIn, run } from '../lab/exec';
import { killNamespaceProcesses, listNamespaces } from '../lab/lab';

export const BENCH_PREFIX = 'ulb-';
/** Config files, sockets and name files of the benchmarks' uplinkd runs; never /etc. */
export const STATE_ROOT = '/run/uplinkd-bench';

const created = new Set<string>();

export function stateDir(ns: string): string {
  return path.join(STATE_ROOT, ns);
}

/** Creates `ulb-<name>` with loopback up and its state dir; it is removed by `cleanup()`. */
export async function createNamespace(name: string): Promise<string> {
  const ns = `${BENCH_PREFIX}${name}`;
  if (!/^ulb-[a-z0-9-]{1,20}$/.test(ns)) throw new UplinkdError('usage', `bad benchmark namespace name '${ns}'`);
  created.add(ns);
  await run('ip', ['netns', 'add', ns]);
  await ipIn(ns, ['link', 'set', 'lo', 'up']);
  await fs.mkdir(stateDir(ns), { recursive: true, mode: 0o700 });
  return ns;
}

async function benchNamespaces(): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(BENCH_PREFIX));
}

/** Every process in the namespaces was started by a benchmark: stop them, then the namespaces go. */
async function removeNamespaces(namespaces: readonly string[]): Promise<void> {
  await killNamespaceProcesses(namespaces);
  for (const ns of namespaces) {
    await run('ip', ['netns', 'del', ns], { allowFail: true });
    await fs.rm(stateDir(ns), { recursive: true, force: true });
    created.delete(ns);
  }
}

/** Removes the namespaces created so far (a benchmark's `finally`, and run.ts on exit and signals). */
export async function cleanup(): Promise<void> {
  const present = new Set(await benchNamespaces());
  await removeNamespaces([...created].filter((n) => present.has(n)));
  for (const ns of created) await fs.rm(stateDir(ns), { recursive: true, force: true });
  created.clear();
}

const LOCK = path.join(STATE_ROOT, 'bench.pid');

/**
 * Makes this process the only benchmark run: two at once would disturb each other's numbers,
 * and each would remove the other's namespaces as leftovers. Throws if another run is alive.
 */
export async function lockRun(): Promise<void> {
  await fs.mkdir(STATE_ROOT, { recursive: true, mode: 0o700 });
  const other = Number(await fs.readFile(LOCK, 'utf8').catch(() => ''));
  if (Number.isInteger(other) && other > 1 && other !== process.pid && isBenchRun(other))
    throw new UplinkdError('usage', `another benchmark run (pid ${other}) is in progress; wait for it or stop it`);
  await fs.writeFile(LOCK, String(process.pid));
}

export async function unlockRun(): Promise<void> {
  if ((await fs.readFile(LOCK, 'utf8').catch(() => '')) === String(process.pid)) await fs.rm(LOCK, { force: true });
}

function isBenchRun(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join('bench', 'run.js'));
  } catch {
    return false;
  }
}

/** Every `ulb-` namespace and its state: an earlier, killed run's at start; this run's own on a signal. Only under lockRun(). */
export async function removeLeftovers(): Promise<string[]> {
  const left = await benchNamespaces();
  await removeNamespaces(left);
  for (const entry of await fs.readdir(STATE_ROOT).catch(() => [] as string[]))
    if (path.join(STATE_ROOT, entry) !== LOCK) await fs.rm(path.join(STATE_ROOT, entry), { recursive: true, force: true });
  return left;
}

export interface RouterSpec {
  /** Interfaces in the router; each gets a veth peer (`s<index>`) in the sink, both up. */
  interfaces: string[];
  /** Static addresses (`a.b.c.d/len`) by interface. */
  addresses: Record<string, string>;
}

/**
 * A router namespace and a sink namespace holding the veth peers (this kernel has no dummy
 * driver): the interfaces have carrier and nothing is ever sent through them.
 */
export async function buildRouter(name: string, spec: RouterSpec): Promise<{ router: string; sink: string }> {
  const router = await createNamespace(name);
  const sink = await createNamespace(`${name}-sink`);
  const routerCmds: string[] = [];
  const sinkCmds: string[] = [];
  spec.interfaces.forEach((ifname, i) => {
    routerCmds.push(`link add ${ifname} type veth peer name s${i} netns ${sink}`);
    sinkCmds.push(`link set s${i} up`);
  });
  for (const ifname of spec.interfaces) routerCmds.push(`link set ${ifname} up`);
  for (const [ifname, cidr] of Object.entries(spec.addresses)) routerCmds.push(`addr add ${cidr} dev ${ifname}`);
  await ipIn(router, ['-batch', '-'], { input: routerCmds.join('\n') + '\n' });
  await ipIn(sink, ['-batch', '-'], { input: sinkCmds.join('\n') + '\n' });
  return { router, sink };
}

export async function writeFile(ns: string, name: string, text: string): Promise<string> {
  const file = path.join(stateDir(ns), name);
  await fs.writeFile(file, text, { mode: 0o600 });
  return file;
}

/** Runs a probe (dist/bench/probes/NAME.js) inside `ns` and returns the JSON it prints last. */
export async function runProbe<T>(ns: string, probe: string, args: unknown, timeoutMs: number): Promise<T> {
  const file = path.join(__dirname, 'probes', `${probe}.js`);
  const r = await inNs(ns, process.execPath, [file, JSON.stringify(args)], { timeoutMs, allowFail: true });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !last.startsWith('{'))
    throw new UplinkdError('lab', `probe ${probe} in ${ns} failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim() || r.stdout.trim()}`);
  return JSON.parse(last) as T;
}

export function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}
