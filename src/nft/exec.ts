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

/** Why `uplinkd exec` cannot work on this host for `config`'s exec cgroups, or undefined when it can (or exec is not configured). */
function execUnavailable(config: Config, root: string | undefined): string | undefined {
  if (!config.exec) return undefined;
  if (root === undefined) return 'no cgroup v2 hierarchy is mounted (looked in /proc/self/mountinfo)';
  if (path.relative(NFT_CGROUP_BASE, root).startsWith('..')) {
    return `the cgroup v2 hierarchy is mounted at ${root}, outside ${NFT_CGROUP_BASE} where nftables resolves cgroup paths`;
  }
  if (!config.pinning?.enabled) return 'it needs flow pinning (its marks and fwmark rules), which is off';
  return undefined;
}

/**
 * Warnings for check, plan, apply, status and the daemon's log when `exec: {cgroup: NAME}` is
 * configured but `uplinkd exec` cannot work here: no cgroup v2 hierarchy in /proc/self/mountinfo, one
 * mounted outside /sys/fs/cgroup (nftables' SYSFS_CGROUPSV2_PATH), or pinning off. Empty otherwise.
 * `mountinfo`: the text of /proc/self/mountinfo (read when not given).
 */
export function execWarnings(config: Config, mountinfo?: string): string[] {
  const why = execUnavailable(config, cgroup2Root(mountinfo));
  return why === undefined ? [] : [`exec: ${why}: uplinkd exec will not work`];
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
 * Errors (uplinkd(8) EXIT STATUS): UplinkdError('usage') (exit 2) when exec is not configured,
 * pinning is off, the uplink is unknown or no command is given; 'io' (exit 1, a failure of this host,
 * not of the command line) when no usable cgroup v2 hierarchy is mounted or the uplink's cgroup cannot
 * be entered (uplinkd apply creates it). `mountinfo`: /proc/self/mountinfo's text (read when not given).
 */
export async function execInUplink(config: Config, uplink: string, argv: string[], mountinfo?: string): Promise<number> {
  if (!config.exec) throw new UplinkdError('usage', 'exec is not configured: add exec: {cgroup: uplinkd} to the configuration and run uplinkd apply');
  if (!config.pinning?.enabled) throw new UplinkdError('usage', 'exec needs flow pinning (its marks and fwmark rules): pinning: {enabled: true}');
  if (!config.uplinks.some((u) => u.name === uplink)) {
    throw new UplinkdError('usage', `unknown uplink '${uplink}' (expected one of: ${config.uplinks.map((u) => u.name).join(', ')})`);
  }
  if (argv.length === 0) throw new UplinkdError('usage', 'usage: uplinkd exec [-c FILE] UPLINK -- COMMAND [ARGS...]');
  const root = cgroup2Root(mountinfo);
  const why = execUnavailable(config, root);
  if (why !== undefined) throw new UplinkdError('io', `exec: ${why}`);
  const cg = execCgroups(config, root).find((c) => c.uplink === uplink)!;
  try {
    await writeFile(path.join(cg.dir, 'cgroup.procs'), `${process.pid}\n`);
  } catch (e) {
    throw new UplinkdError('io', `cannot enter cgroup ${cg.dir} (uplinkd apply creates it): ${(e as Error).message}`, { cause: e });
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
