// `uplinkd exec UPLINK -- COMMAND...` (docs/policies.md, "Running a command through an uplink"): the
// command runs in a cgroup v2 of its uplink; uplinkd's table marks packets of sockets in that cgroup
// (`socket cgroupv2`, nftables' cgroup id match) in its `type route` output chain, so the kernel routes
// them again, now by the `fwmark` rule to the uplink's table; the source address the socket picked
// before is masqueraded to the uplink's (it may be another uplink's). No LD_PRELOAD, no SO_MARK in the
// program: cgroup membership is inherited by every child and cannot be dropped by the program.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Config } from '../config/types';
import { UplinkdError } from '../errors';
import { pinMarks, type PinMark } from './marks';

/** Where nft resolves `socket cgroupv2` paths (nftables' SYSFS_CGROUPSV2_PATH). */
export const NFT_CGROUP_BASE = '/sys/fs/cgroup';

/** The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo (field 5; fs type after " - "). */
export function cgroup2Root(mountinfo?: string): string | undefined {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  for (const line of text.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.split(' ')[0] === 'cgroup2') return pre!.split(' ')[4];
  }
  return undefined;
}

export interface ExecCgroup extends PinMark {
  /** Absolute directory of the uplink's cgroup. */
  dir: string;
  /** The path nft takes (relative to /sys/fs/cgroup) and the cgroup's level below the v2 root. */
  nftPath: string;
  level: number;
}

/** The exec cgroups of `config` (empty when exec is not configured, pinning is off, or no cgroup v2 is mounted under /sys/fs/cgroup). */
export function execCgroups(config: Config, root = cgroup2Root()): ExecCgroup[] {
  if (!config.exec || root === undefined) return [];
  const base = path.relative(NFT_CGROUP_BASE, root);
  if (base.startsWith('..')) return [];
  return pinMarks(config).map((m) => {
    const rel = path.posix.join(config.exec!.cgroup, m.uplink);
    return { ...m, dir: path.join(root, rel), nftPath: path.posix.join(base, rel), level: rel.split('/').length };
  });
}

/** Creates the cgroup directories (before nft resolves them); EEXIST tolerated. */
export async function ensureExecCgroups(cgroups: readonly ExecCgroup[]): Promise<void> {
  for (const c of cgroups) await mkdir(c.dir, { recursive: true });
}

/** `uplinkd down`: removes the uplinks' cgroups and their parent when empty; busy (a command still runs) or missing ones are left. */
export async function removeExecCgroups(config: Config, root = cgroup2Root()): Promise<string[]> {
  if (!config.exec || root === undefined) return [];
  const removed: string[] = [];
  const dirs = [...config.uplinks.map((u) => path.join(root, config.exec!.cgroup, u.name)), path.join(root, config.exec.cgroup)];
  for (const dir of dirs) {
    try {
      await rmdir(dir);
      removed.push(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw e;
    }
  }
  return removed;
}

/**
 * Runs argv with its traffic leaving through `uplink`: moves this process into the uplink's cgroup
 * (the child inherits it), runs the command with the terminal, returns its exit code (128 + signal).
 * Errors: UplinkdError('usage') when exec is not configured, the uplink is unknown, or the cgroup is
 * missing (uplinkd apply creates it).
 */
export async function execInUplink(config: Config, uplink: string, argv: string[], root = cgroup2Root()): Promise<number> {
  if (!config.exec) throw new UplinkdError('usage', 'exec is not configured: add exec: {cgroup: uplinkd} to the configuration and run uplinkd apply');
  if (!config.pinning?.enabled) throw new UplinkdError('usage', 'exec needs flow pinning (its marks and fwmark rules): pinning: {enabled: true}');
  if (root === undefined) throw new UplinkdError('usage', 'no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)');
  const cg = execCgroups(config, root).find((c) => c.uplink === uplink);
  if (!cg) throw new UplinkdError('usage', `unknown uplink '${uplink}' (expected one of: ${config.uplinks.map((u) => u.name).join(', ')})`);
  if (argv.length === 0) throw new UplinkdError('usage', 'usage: uplinkd exec [-c FILE] UPLINK -- COMMAND [ARGS...]');
  try {
    await writeFile(path.join(cg.dir, 'cgroup.procs'), `${process.pid}\n`);
  } catch (e) {
    throw new UplinkdError('usage', `cannot enter cgroup ${cg.dir} (uplinkd apply creates it): ${(e as Error).message}`, { cause: e });
  }
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    child.on('error', (e) => {
      console.error(`uplinkd: exec: cannot run ${argv[0]}: ${e.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0)));
  });
}
