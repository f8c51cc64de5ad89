import type { Config } from '../config/types';
import { UplinkdError } from '../errors';
import { NetlinkKernelPort } from '../kernel/netlink-port';
import type { KernelPort } from '../kernel/port';
import type { Change } from '../model/types';
import {
  applyPinning, computeCycle, observe, observePinning, reconcile, removeOwnedNames, removePinning, syncOwnedNames, teardownChanges,
  type Cycle, type PinningChange, type PinningPlan,
} from '../engine/cycle';
import { setMultipathHashPolicy } from '../system/sysctl';
import { firewallMarkWarnings } from '../nft/neighbours-io';
import { execWarnings } from '../nft/exec';
import { fwmarkRuleWarnings } from '../plan/mark-warnings';

export interface OneShotResult extends Cycle {
  /** Flow pinning's nftables table (src/nft): wanted, found, the change between. */
  pinning: PinningPlan;
}

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
}

async function withPort<T>(fn: (port: KernelPort) => Promise<T>): Promise<T> {
  const port = await NetlinkKernelPort.open();
  try {
    return await fn(port);
  } finally {
    port.close();
  }
}

/** What `apply` would change, without changing anything. Health is unknown outside the daemon. */
export function planOnce(config: Config, warn: (m: string) => void): Promise<OneShotResult> {
  return withPort(async (port) => {
    const cycle = computeCycle(config, await observe(port, config, {}, (file, m) => warn(`${file}: ${m}`)));
    cycle.plan.warnings.push(...(await firewallMarkWarnings(config)), ...execWarnings(config));
    return { ...cycle, pinning: await observePinning(config) };
  });
}

/**
 * `uplinkd apply`: observes the kernel once over netlink, plans, writes iproute2 name files and the multipath sysctl,
 * applies flow pinning's nftables table, then reconciles the routing changes (in diff() order). Warnings go to `warn`.
 * A refused change or nft failure does not throw: it is in `failed` / `pinningFailed`. Throws UplinkdError when the
 * netlink socket cannot be opened ('netlink') or a name file cannot be written ('io').
 */
export function applyOnce(config: Config, warn: (m: string) => void): Promise<ApplyResult> {
  return withPort(async (port) => {
    const cycle = computeCycle(config, await observe(port, config, {}, (file, m) => warn(`${file}: ${m}`)));
    cycle.plan.warnings.push(...(await firewallMarkWarnings(config)), ...execWarnings(config));
    for (const w of cycle.plan.warnings) warn(w);
    const pinning = await observePinning(config);
    if (pinning.warning) warn(pinning.warning);
    await syncOwnedNames(config);
    if (config.multipathHashPolicy !== undefined) await setMultipathHashPolicy(config.multipathHashPolicy);
    // Pinning first: the marks mean nothing until the fwmark rules exist, and the rules match nothing until marks do.
    let pinningApplied: PinningChange | undefined;
    let pinningFailed: UplinkdError | undefined;
    try {
      pinningApplied = await applyPinning(pinning);
    } catch (err) {
      pinningFailed = asUplinkdError(err);
    }
    const result = await reconcile(port, cycle.changes);
    return { ...cycle, pinning, ...result, ...(pinningApplied ? { pinningApplied } : {}), ...(pinningFailed ? { pinningFailed } : {}) };
  });
}

/**
 * For `check`: foreign fwmark rules and firewall rules whose marks overlap pinning.mark_mask
 * (docs/pinning.md). Reading the kernel needs no privilege for rules; firewall rules it cannot
 * read (nft needs CAP_NET_ADMIN) are left out.
 */
export async function markNeighbourWarnings(config: Config): Promise<string[]> {
  const rules = await withPort(async (port) => fwmarkRuleWarnings(config, await port.snapshot()));
  return [...rules, ...(await firewallMarkWarnings(config))];
}

/**
 * `uplinkd down`: deletes the `ip uplinkd` nftables table, every route, rule and nexthop carrying uplinkd's protocol
 * (teardownChanges()) and the iproute2 name files uplinkd wrote; nothing else. Refusals are in `failed` /
 * `pinningFailed`, not thrown.
 */
export function downOnce(config: Config): Promise<DownResult> {
  return withPort(async (port) => {
    let pinningRemoved = false;
    let pinningFailed: UplinkdError | undefined;
    try {
      pinningRemoved = await removePinning();
    } catch (err) {
      pinningFailed = asUplinkdError(err);
    }
    const result = await reconcile(port, teardownChanges(config, await port.snapshot()));
    await removeOwnedNames(config);
    return { ...result, pinningRemoved, ...(pinningFailed ? { pinningFailed } : {}) };
  });
}

function asUplinkdError(err: unknown): UplinkdError {
  return err instanceof UplinkdError ? err : new UplinkdError('io', err instanceof Error ? err.message : String(err), { cause: err });
}
