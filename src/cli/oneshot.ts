import type { Config } from '../config/types';
import type { UplinkdError } from '../errors';
import { NetlinkKernelPort } from '../kernel/netlink-port';
import type { KernelPort } from '../kernel/port';
import type { Change } from '../model/types';
import { computeCycle, observe, reconcile, removeOwnedNames, syncOwnedNames, teardownChanges, type Cycle } from '../engine/cycle';
import { setMultipathHashPolicy } from '../system/sysctl';

export type OneShotResult = Cycle;

export interface ApplyResult extends Cycle {
  applied: Change[];
  failed: { change: Change; error: UplinkdError }[];
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
  return withPort(async (port) => computeCycle(config, await observe(port, config, {}, warn)));
}

export function applyOnce(config: Config, warn: (m: string) => void): Promise<ApplyResult> {
  return withPort(async (port) => {
    const cycle = computeCycle(config, await observe(port, config, {}, warn));
    for (const w of cycle.plan.warnings) warn(w);
    await syncOwnedNames(config);
    if (config.multipathHashPolicy !== undefined) await setMultipathHashPolicy(config.multipathHashPolicy);
    const result = await reconcile(port, cycle.changes);
    return { ...cycle, ...result };
  });
}

export function downOnce(config: Config): Promise<{ applied: Change[]; failed: { change: Change; error: UplinkdError }[] }> {
  return withPort(async (port) => {
    const result = await reconcile(port, teardownChanges(config, await port.snapshot()));
    await removeOwnedNames(config);
    return result;
  });
}
