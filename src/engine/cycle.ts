import type { Config } from '../config/types';
import type { KernelPort, RouteInterest } from '../kernel/port';
import type { Facts, HealthVerdict } from '../model/facts';
import type { Change, DesiredState, KernelState } from '../model/types';
import { readLeases } from '../facts/leases';
import { ownedTables, plan, type Plan } from '../plan/planner';
import { diff } from '../reconcile/diff';
import { reconcile } from '../reconcile/reconcile';
import { syncOwnedNames, removeOwnedNames } from './names';
import { applyPinning, formatPinningChange, observePinning, removePinning, type PinningChange, type PinningPlan } from '../nft/pinning';
import { MAIN_TABLE } from '../model/types';

export interface Cycle {
  facts: Facts;
  plan: Plan;
  changes: Change[];
}

export type LeaseReader = typeof readLeases;

/**
 * Reads what the planner looks at: the kernel, then the DHCP clients' lease files (whose
 * interface indexes, for systemd-networkd's, are named from the same snapshot).
 */
export async function observe(
  port: KernelPort,
  config: Config,
  health: Record<string, HealthVerdict>,
  warn: (file: string, message: string) => void,
  leaseReader: LeaseReader = readLeases,
  retired?: Config,
): Promise<Facts> {
  const kernel = await port.snapshot(routeInterest(config, retired));
  const interfaceNames = new Map(kernel.links.map((l) => [l.index, l.name]));
  const leases = await leaseReader(config.paths.leases, { interfaceNames, warn });
  return { kernel, leases, health };
}

/**
 * The routes planning and diff look at (src/plan/planner.ts, src/reconcile/diff.ts): every route of
 * uplinkd's tables (collisions) and of main (the connected networks copied into each uplink table,
 * src/plan/connected.ts), routes of its protocol in any table (what it owns, also what an earlier
 * configuration `retired` made), and default routes in any table (DHCP clients' gateways).
 */
export function routeInterest(config: Config, retired?: Config): RouteInterest {
  const tables = new Set([...ownedTables(config), MAIN_TABLE]);
  const protocols = new Set([config.protocol]);
  if (retired) {
    for (const t of ownedTables(retired)) tables.add(t);
    protocols.add(retired.protocol);
  }
  return { tables: [...tables].sort((a, b) => a - b), protocols: [...protocols].sort((a, b) => a - b) };
}

/** One planning pass: facts -> desired state -> the smallest change. Pure past `observe`. */
export function computeCycle(config: Config, facts: Facts): Cycle {
  const p = plan(config, facts);
  return { facts, plan: p, changes: diff(p.desired, facts.kernel, config) };
}

const EMPTY: DesiredState = { routes: [], rules: [], nexthops: [] };

/** The changes that remove everything uplinkd owns from `kernel`. */
export function teardownChanges(config: Config, kernel: KernelState): Change[] {
  return diff(EMPTY, kernel, config);
}

export { reconcile, syncOwnedNames, removeOwnedNames };
// Flow pinning's nftables table: read, planned and changed beside the routing (src/nft).
export { applyPinning, formatPinningChange, observePinning, removePinning, type PinningChange, type PinningPlan };
