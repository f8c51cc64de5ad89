import type { Config } from '../config/types';
import { UplinkdError } from '../errors';
import { NetlinkKernelPort } from '../kernel/netlink-port';
import type { KernelPort } from '../kernel/port';
import type { Change, KernelState } from '../model/types';
import {
  applyChanges, computeCycle, describeKept, guardCycle, observe, observeTeardown, removeOwnedNames, runOnce, syncOwnedNames, type Cycle,
  type KeptNexthop, type PinningChange,
} from '../engine/cycle';
import { runNft } from '../nft/nft';
import { hashRecordPath, IPV4_SYSCTL_DIR, restoreMultipathHash, syncMultipathHash } from '../system/sysctl';
import { allMarkWarnings, firewallMarkWarnings, readFirewallMarkUses } from '../nft/neighbours-io';
import { execWarnings } from '../nft/exec';

/** The engine's cycle (src/engine/cycle.ts), with flow pinning's table wanted, found and the change between. */
export type OneShotResult = Cycle;

export interface ApplyResult extends OneShotResult {
  applied: Change[];
  failed: { change: Change; error: UplinkdError }[];
  /** The nftables change made, if any. */
  pinningApplied?: PinningChange;
  pinningFailed?: UplinkdError;
}

export interface DownResult {
  applied: Change[];
  failed: { change: Change; error: UplinkdError }[];
  /** The pinning table was there and is gone. */
  pinningRemoved: boolean;
  pinningFailed?: UplinkdError;
  /** The multipath hash sysctls put back to what they were before uplinkd set them, as `sysctl NAME=VALUE` lines. */
  sysctlRestored: string[];
  /** Why they were left as they are (changed by someone else since). */
  sysctlNote?: string;
  /** Nexthops left in place because other programs' routes or groups use them (describeKept says which and what to do). */
  kept: KeptNexthop[];
}

async function withPort<T>(fn: (port: KernelPort) => Promise<T>): Promise<T> {
  const port = await NetlinkKernelPort.open();
  try {
    return await fn(port);
  } finally {
    port.close();
  }
}

/**
 * What `apply` would change, without changing anything. Health is unknown outside the daemon. Nexthops other programs
 * use are not deleted (guardCycle), and a warning says so.
 */
export function planOnce(config: Config, warn: (m: string) => void): Promise<OneShotResult> {
  return withPort(async (port) => {
    const cycle = await guardCycle(port, config, computeCycle(config, await observe(port, config, { warn: (file, m) => warn(`${file}: ${m}`), nft: runNft })));
    cycle.plan.warnings.push(...(await firewallMarkWarnings(config, cycle.facts.kernel.rules)), ...execWarnings(config), ...(cycle.kept ?? []).map(describeKept));
    return cycle;
  });
}

/**
 * `uplinkd apply`: the name files and the sysctl, then the engine's cycle once (runOnce: observe, plan,
 * diff, apply; the same functions the daemon's cycles run: flow pinning's nftables table beside the routing
 * changes in diff() order), then its warnings through `warn`. A refused change or nft failure does not throw: it is
 * in `failed` / `pinningFailed`. Throws UplinkdError when the netlink socket cannot be opened ('netlink') or a name
 * file cannot be written ('io').
 */
export function applyOnce(config: Config, warn: (m: string) => void): Promise<ApplyResult> {
  return withPort(async (port) => {
    // Other programs' firewall rules are read (three processes) while the kernel is changed: the warnings need nothing of it.
    const firewallUses = config.pinning?.enabled ? readFirewallMarkUses() : Promise.resolve([]);
    firewallUses.catch(() => undefined); // awaited below; a throw before then must not be unhandled
    await syncOwnedNames(config);
    const hashNote = await syncMultipathHash(config.multipathHash, await hashRecordPath());
    const { cycle, result } = await runOnce(port, config, { warn: (file, m) => warn(`${file}: ${m}`), nft: runNft });
    cycle.plan.warnings.push(...(await firewallMarkWarnings(config, cycle.facts.kernel.rules, firewallUses)), ...execWarnings(config), ...(hashNote ? [`multipath_hash: ${hashNote}`] : []),
      ...(cycle.kept ?? []).map(describeKept));
    for (const w of cycle.plan.warnings) warn(w);
    if (cycle.pinning.warning) warn(cycle.pinning.warning);
    const { nftApplied, nftFailed, ...applied } = result;
    return { ...cycle, ...applied, ...(nftApplied ? { pinningApplied: nftApplied } : {}), ...(nftFailed ? { pinningFailed: nftFailed } : {}) };
  });
}

/**
 * For `check`: the kernel's links, addresses, rules and nexthops, without routes (a router's tables may hold a
 * million). Needs no privilege. Throws UplinkdError('netlink') when the socket cannot be opened.
 */
export function readKernelForCheck(): Promise<KernelState> {
  return withPort((port) => port.snapshot({ tables: [], protocols: [], devices: [] }));
}

/**
 * For `check`: foreign fwmark rules (of `kernel`, readKernelForCheck) and firewall rules whose marks overlap
 * pinning.mark_mask (docs/pinning.md); firewall rules it cannot read (nft needs CAP_NET_ADMIN) are left out.
 */
export async function markNeighbourWarnings(config: Config, kernel: KernelState): Promise<string[]> {
  return allMarkWarnings(config, kernel.rules);
}

/**
 * `uplinkd down`: deletes the `ip uplinkd` nftables table, every route, rule and nexthop carrying config's protocol
 * (observeTeardown) and the iproute2 name files uplinkd wrote; nothing else, and not the nexthops other programs'
 * routes or groups use (`kept`). Refusals are in `failed` / `pinningFailed`, not thrown.
 */
export function downOnce(config: Config): Promise<DownResult> {
  return withPort(async (port) => {
    const teardown = await observeTeardown(port, config, runNft);
    const { nftApplied, nftFailed, ...result } = await applyChanges(port, teardown, runNft);
    await removeOwnedNames(config);
    const hash = await restoreMultipathHash(IPV4_SYSCTL_DIR, await hashRecordPath());
    return { ...result, kept: teardown.kept, pinningRemoved: nftApplied !== undefined, ...(nftFailed ? { pinningFailed: nftFailed } : {}),
      sysctlRestored: hash.restored, ...(hash.note !== undefined && { sysctlNote: hash.note }) };
  });
}
