// Shared pieces of the lab tests: root check, a lab per test file, and the
// acceptance checks that the plain and the VLAN lab both run.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderLabConfig, type LabConfigOptions } from '../../lab/config';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import type { LogLevel } from '../../src/log';
import { ipIn, LAB_RUNTIME_DIR, run } from '../../lab/exec';
import { recordPath } from '../../src/daemon/socket-record';
import { uplinkd, routesOfTable, rules } from '../../lab/inspect';
import { labDown, labUp } from '../../lab/lab';
import type { LabInfo, LabOptions } from '../../lab/topology';
import { ping, tcpProbe } from '../../lab/traffic';

/** Reason to skip, or false when the tests can run. */
export const NEEDS_ROOT: string | false =
  process.getuid?.() === 0 ? false : 'needs root: the lab builds network namespaces';

/** A fresh lab for one test file: removes leftovers of a crashed run first. */
export async function freshLab(opts: LabOptions & { prefix: string }): Promise<LabInfo> {
  await labDown(opts.prefix);
  return labUp(opts);
}

/** Writes a variant of the lab's config (e.g. failover, other weights) next to it and returns its path. */
export async function writeConfig(lab: LabInfo, name: string, opts: LabConfigOptions): Promise<string> {
  const file = path.join(lab.stateDir, name);
  await fs.writeFile(file, renderLabConfig(lab, opts));
  return file;
}

/** Runs `uplinkd apply` in the router and asserts it succeeded; returns N of "N changes applied". */
export async function apply(lab: LabInfo, config = lab.configPath): Promise<number> {
  const r = await uplinkd(lab.ns.router, ['apply', '-c', config]);
  assert.equal(r.code, 0, `uplinkd apply exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return changesApplied(r.stdout);
}

export async function down(lab: LabInfo, config = lab.configPath): Promise<void> {
  const r = await uplinkd(lab.ns.router, ['down', '-c', config]);
  assert.equal(r.code, 0, `uplinkd down exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
}

/** N from the final line `N changes applied` (also "1 change applied"). */
export function changesApplied(stdout: string): number {
  const last = stdout.trim().split('\n').pop() ?? '';
  const m = /^(\d+) changes? applied$/.exec(last.trim());
  assert.ok(m, `apply's last line is not 'N changes applied': ${JSON.stringify(last)}`);
  return Number(m[1]);
}

export interface Reach {
  uplink: string;
  address: string;
  ping: boolean;
  /** Source address the router's server saw, undefined when the connection failed. */
  tcpPeer?: string;
}

/** Ping and one TCP connection from the internet host to each uplink address (server must run in the router). */
export async function reachUplinks(lab: LabInfo, port: number): Promise<Reach[]> {
  const out: Reach[] = [];
  for (const u of lab.uplinks) {
    out.push({
      uplink: u.name,
      address: u.address,
      ping: await ping(lab.ns.inet, u.address, { count: 2, waitSec: 1 }),
      tcpPeer: await tcpProbe(lab.ns.inet, u.address, port, 1500),
    });
  }
  return out;
}

/** Acceptance 1 (with uplinkd): every uplink address answers ping and TCP from the internet host. */
export function assertAllReachable(lab: LabInfo, reach: Reach[]): void {
  for (const r of reach) {
    assert.equal(r.ping, true, `ping ${r.address} (${r.uplink}) from the internet host failed`);
    assert.equal(r.tcpPeer, lab.internetHost, `TCP to ${r.address} (${r.uplink}) failed or saw another peer: ${r.tcpPeer}`);
  }
}

/** Acceptance 3: the DHCP uplink has `from <leased>/32 lookup <table>` and `default via <gateway>` in that table. */
export async function assertDhcpUplinkRouted(lab: LabInfo, table = 1002): Promise<void> {
  const dhcp = lab.uplinks.find((u) => u.mode === 'dhcp');
  assert.ok(dhcp, 'the lab has a DHCP uplink');
  const rs = await rules(lab.ns.router);
  // iproute2 prints a /32 source without srclen
  const rule = rs.find((r) => r.src === dhcp.address && (r.srclen ?? 32) === 32);
  assert.ok(rule, `no rule 'from ${dhcp.address}/32' in ${JSON.stringify(rs)}`);
  assert.equal(String(rule.table), String(table));
  const routes = await routesOfTable(lab.ns.router, table);
  const def = routes.find((r) => r.dst === 'default');
  assert.ok(def, `table ${table} has no default route: ${JSON.stringify(routes)}`);
  assert.equal(def.gateway, dhcp.gateway);
  assert.equal(def.dev, dhcp.interface);
}

/**
 * Allowed deviation of a binomial count: `sigmas` standard deviations of n flows
 * with probability p, sqrt(n p (1-p)). With 5 sigma a correct balancer fails about
 * once in 1.7 million runs; a balancer ignoring weights (p = 0.5) misses by 11+ sigma.
 */
export function binomialTolerance(n: number, p: number, sigmas = 5): number {
  return sigmas * Math.sqrt(n * p * (1 - p));
}

/** Runs `fn` and always tears the lab down afterwards (for one-off labs inside a test). */
export async function withLab<T>(opts: LabOptions & { prefix: string }, fn: (lab: LabInfo) => Promise<T>): Promise<T> {
  try {
    return await fn(await freshLab(opts));
  } finally {
    await labDown(opts.prefix);
  }
}

/**
 * Fills the new namespace `ns` with one static uplink, wan0 198.51.100.2/24 (its veth peer wan0p beside it, both up),
 * and writes a daemon config for it into `dir`: control socket, iproute2 name files and hooks there, lease files from
 * the globs `leases`. Returns the config's path. Throws (execFileSync) if an `ip` command fails.
 */
export function oneUplinkNamespace(ns: string, dir: string, leases: string[] = []): string {
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  ip('netns', 'add', ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'wan0p');
  ip('-n', ns, 'addr', 'add', '198.51.100.2/24', 'dev', 'wan0');
  ip('-n', ns, 'link', 'set', 'wan0', 'up');
  ip('-n', ns, 'link', 'set', 'wan0p', 'up');
  const config = path.join(dir, 'uplinkd.yaml');
  writeFileSync(config, [
    'uplinks:',
    '  - name: isp1',
    '    interface: wan0',
    '    address: 198.51.100.2/24',
    '    gateway: 198.51.100.1',
    'paths:',
    `  control_socket: ${JSON.stringify(path.join(dir, 'control.sock'))}`,
    `  rt_tables: ${JSON.stringify(path.join(dir, 'rt_tables.conf'))}`,
    `  rt_protos: ${JSON.stringify(path.join(dir, 'rt_protos.conf'))}`,
    `  hooks_dir: ${JSON.stringify(path.join(dir, 'hooks.d'))}`,
    `  leases: [${leases.map((l) => JSON.stringify(l)).join(', ')}]`,
    '',
  ].join('\n'));
  return config;
}

/**
 * A namespace of its own for a daemon test: removes `ns` and `dir` left by an earlier run, creates `dir` with a
 * `leases` subdirectory (0700) and the namespace with lo up and, per [device, address/prefix], a veth pair (peer
 * `<device>p` beside it) with the address on the device, both ends up. Throws UplinkdError('lab') if `ip` fails.
 */
export async function vethNamespace(ns: string, dir: string, devices: readonly (readonly [string, string])[]): Promise<void> {
  await removeNamespace(ns, dir);
  await fs.mkdir(path.join(dir, 'leases'), { recursive: true, mode: 0o700 });
  await run('ip', ['netns', 'add', ns]);
  await ipIn(ns, ['link', 'set', 'lo', 'up']);
  for (const [dev, addr] of devices) {
    await ipIn(ns, ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]);
    await ipIn(ns, ['addr', 'add', addr, 'dev', dev]);
    await ipIn(ns, ['link', 'set', dev, 'up']);
    await ipIn(ns, ['link', 'set', `${dev}p`, 'up']);
  }
}

/**
 * The `paths:` section of a test config (lines, without the final newline) that keeps every file uplinkd writes in
 * `dir`: name files, hooks, lease glob and the control socket (`socket`, default `dir`/control.sock).
 */
export function statePaths(dir: string, socket = `${dir}/control.sock`): string[] {
  return ['paths:', `  rt_tables: ${dir}/rt_tables.conf`, `  rt_protos: ${dir}/rt_protos.conf`, `  control_socket: ${socket}`,
    `  hooks_dir: ${dir}/hooks.d`, `  leases: ["${dir}/leases/*.lease"]`];
}

/**
 * A fresh oneUplinkNamespace `ns` (state in `dir`) with `uplinkd run` in it, logging at `level`, once it is ready:
 * the daemon and its config file. Pair with removeDaemonNamespace.
 */
export async function oneUplinkDaemon(ns: string, dir: string, level: LogLevel = 'info'): Promise<{ daemon: RunningDaemon; config: string }> {
  await removeNamespace(ns, dir);
  await fs.mkdir(dir, { recursive: true });
  const config = oneUplinkNamespace(ns, dir);
  return { daemon: await startDaemon(ns, config, undefined, level), config };
}

/**
 * A daemon test's clean-up: kills `daemon` (SIGKILL; none when it never started), removes the socket record it left for
 * `config` in the lab's runtime directory, then namespace `ns` and directory `dir`.
 */
export async function removeDaemonNamespace(daemon: RunningDaemon | undefined, config: string, ns: string, dir: string): Promise<void> {
  if (daemon) await stopDaemon(daemon, 'SIGKILL');
  await fs.rm(recordPath(LAB_RUNTIME_DIR, config), { force: true });
  await removeNamespace(ns, dir);
}

/** Deletes namespace `ns` and directory `dir`; either may be missing. */
export async function removeNamespace(ns: string, dir: string): Promise<void> {
  await run('ip', ['netns', 'del', ns], { allowFail: true });
  await fs.rm(dir, { recursive: true, force: true });
}
