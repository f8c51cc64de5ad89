// The one cycle the CLI (`plan`, `apply`, `down`, `status`) and the daemon share:
//   observe (kernel snapshot + DHCP leases + uplinkd's nftables table)
//   -> computeCycle (pure: plan, then diff; the nftables table is planned and diffed beside the routing)
//   -> applyChanges (the nft change beside the netlink changes through the reconciler).
// The daemon adds only its policy around these (debounce, retry, storm spacing, drift and conflicts).
import type { Config } from '../config/types';
import { UplinkdError } from '../errors';
import type { KernelPort, RouteInterest } from '../kernel/port';
import type { Facts, HealthVerdict } from '../model/facts';
import type { Change, DesiredState, KernelState } from '../model/types';
import { readLeases } from '../facts/leases';
import { readPinning, type NftRunner, type ObservedPinning } from '../nft/nft';
import { ownedTables, plan, type Plan } from '../plan/planner';
import { diff } from '../reconcile/diff';
import { reconcile, type ReconcileResult } from '../reconcile/reconcile';
import { syncOwnedNames, removeOwnedNames } from './names';
import {
  applyPinningChange, formatPinningChange, planPinning, teardownPinning, type PinningChange, type PinningPlan,
} from '../nft/pinning';
import { MAIN_TABLE } from '../model/types';
import { describeKept, nexthopsInForeignUse, type KeptNexthop } from '../reconcile/nexthop-users';

/** What one observation found: the planner's facts and the state of `table ip uplinkd`. */
export interface Observation {
  facts: Facts;
  nft: ObservedPinning;
}

/** One planned cycle: the facts, the plan, the netlink changes and flow pinning's table (wanted, found, the change between). */
export interface Cycle {
  facts: Facts;
  plan: Plan;
  /** The smallest ordered netlink change (src/reconcile/diff.ts). */
  changes: Change[];
  /** The desired table (or none), the observed one and the nft change between them (src/nft/pinning.ts). */
  pinning: PinningPlan;
  /** Nexthops `changes` would have deleted but keeps, since other programs use them (keepNexthopsInUse); set by guardCycle. */
  kept?: KeptNexthop[];
}

/** The changes of one cycle as applyChanges takes them. */
export interface CycleChanges {
  netlink: Change[];
  nft?: PinningChange;
}

/** What applyChanges did: the reconciler's result plus the nft change made or refused. */
export interface CycleResult extends ReconcileResult {
  nftApplied?: PinningChange;
  nftFailed?: UplinkdError;
  /**
   * Refused steps of a stand-in swap (src/reconcile/diff.ts standInSwap), kept out of `failed`: the swap only spares
   * the kernel a walk of its tables, the wanted state does not depend on it (a refused stand-in leaves the replace to
   * walk; what a half-done swap left is seen and mended by the next cycle's diff).
   */
  standInFailed?: ReconcileResult['failed'];
}

export type LeaseReader = typeof readLeases;

export interface ObserveOptions {
  /** Uplink name -> health verdict (the daemon's monitor); empty outside the daemon. */
  health?: Record<string, HealthVerdict>;
  /** Lease files that cannot be read or parsed. */
  warn?: (file: string, message: string) => void;
  readLeases?: LeaseReader;
  /** A config replaced by a reload whose leftovers are still read (routeInterest). */
  retired?: Config;
  /**
   * The nftables table: read with this runner (one `nft -j list table ip uplinkd` process), or a
   * state already known (the daemon between resyncs: nft changes send no rtnetlink events, and the
   * table depends on the config alone, so only another program's firewall reload can change it).
   */
  nft: NftRunner | { known: ObservedPinning };
  /** Identities (objectIdentity) of the objects the kernel refused in the last cycle (the daemon's): Facts.refused. */
  refused?: ReadonlySet<string>;
}

/**
 * Reads what the planner looks at: the kernel (routes as routeInterest says) and the nftables table,
 * then the DHCP clients' lease files (whose interface indexes, for systemd-networkd's, are named from
 * the same snapshot). Errors: the port's UplinkdError; nft failures are an 'unavailable' observation.
 */
export async function observe(port: KernelPort, config: Config, options: ObserveOptions): Promise<Observation> {
  const nftSource = options.nft;
  const [kernel, nft] = await Promise.all([
    port.snapshot(routeInterest(config, options.retired)),
    typeof nftSource === 'function' ? readPinning(nftSource) : Promise.resolve(nftSource.known),
  ]);
  const interfaceNames = new Map(kernel.links.map((l) => [l.index, l.name]));
  const leases = await (options.readLeases ?? readLeases)(config.paths.leases, { interfaceNames, warn: options.warn });
  return { facts: { kernel, leases, health: options.health ?? {}, ...(options.refused ? { refused: options.refused } : {}) }, nft };
}

/**
 * The routes planning and diff look at (src/plan/planner.ts, src/reconcile/diff.ts): every route of
 * uplinkd's tables (collisions) and of main (the connected networks copied into each uplink table,
 * src/plan/connected.ts), routes of its protocol in any table (what it owns, also what an earlier
 * configuration `retired` made), and default routes on the uplinks' interfaces in any table (DHCP
 * clients' gateways, src/plan/uplink-kinds.ts defaultRouteCandidates).
 */
export function routeInterest(config: Config, retired?: Config): RouteInterest {
  const tables = new Set([...ownedTables(config), MAIN_TABLE]);
  const protocols = new Set([config.protocol]);
  const devices = new Set(config.uplinks.map((u) => u.interface));
  if (retired) {
    for (const t of ownedTables(retired)) tables.add(t);
    protocols.add(retired.protocol);
    for (const u of retired.uplinks) devices.add(u.interface);
  }
  return { tables: [...tables].sort((a, b) => a - b), protocols: [...protocols].sort((a, b) => a - b), devices: [...devices].sort() };
}

/**
 * One planning pass, pure: facts -> desired state (routes, rules, nexthops; the nftables table or
 * none) -> the smallest change (netlink changes in diff's order; replace or delete `table ip uplinkd`).
 */
export function computeCycle(config: Config, observation: Observation): Cycle {
  const p = plan(config, observation.facts);
  return {
    facts: observation.facts,
    plan: p,
    changes: diff(p.desired, observation.facts.kernel, config),
    pinning: planPinning(config, observation.nft),
  };
}

const EMPTY: DesiredState = { routes: [], rules: [], nexthops: [] };

/** The netlink changes that remove everything uplinkd owns (by `config`'s protocol) from `kernel`, but the nexthops `keep` (ids). */
export function teardownChanges(config: Config, kernel: KernelState, keep?: ReadonlySet<number>): Change[] {
  return diff(EMPTY, kernel, config, keep);
}

/**
 * The nexthops `changes` delete (not a stand-in swap's) that other programs use, and `changes` without deleting them.
 * Deleting a nexthop makes the kernel delete every route on it and shrink or delete the groups holding it, in any
 * table, whoever made them; so before one goes, the nexthops are read again and the routes through the devices of
 * those still there (and of their members) with RTA_OIF dumps (KernelPort.nexthopUsers: the kernel walks its tables
 * and sends only those; only when a nexthop to delete is still there, which a no-op cycle never has, nor a cycle
 * after the kernel removed it with its device or address), and those of a protocol not in `owned` on it, or groups
 * of such a protocol holding it, keep it (src/reconcile/nexthop-users.ts). `without(keep)` recomputes the
 * changes with those ids kept (diff's `keep`); ids for which `unchecked` is true are deleted unchecked. Errors: the
 * port's UplinkdError.
 */
export async function keepNexthopsInUse(
  port: KernelPort, changes: Change[], owned: readonly number[], without: (keep: ReadonlySet<number>) => Change[],
  unchecked: (id: number) => boolean = () => false,
): Promise<{ changes: Change[]; kept: KeptNexthop[] }> {
  const deleting = new Set(changes.flatMap((c) => (c.kind === 'nexthop' && c.op === 'del' && !c.standIn && !unchecked(c.nexthop.id) ? [c.nexthop.id] : [])));
  if (deleting.size === 0) return { changes, kept: [] };
  // The nexthops as they are now: `kernel` may be a view the kernel's silent removals have not reached yet.
  const now = await port.nexthopUsers([...deleting].sort((a, b) => a - b));
  const kept = nexthopsInForeignUse(deleting, now, now.routes, owned);
  if (kept.length === 0) return { changes, kept };
  return { changes: without(new Set(kept.map((k) => k.nexthop.id))), kept };
}

/**
 * The cycle with its changes through keepNexthopsInUse: nexthops other programs use are kept (`kept`), not deleted.
 * Only the nexthops of uplinks the configuration no longer has are checked: finding users walks every table (about
 * 0.1 s at a million routes), too dear for a configured uplink's nexthop that goes with its link, address or gateway (a
 * renumbering), which then takes another program's route on it along (docs/daemon.md); a health failover deletes
 * none (plan keeps an unhealthy uplink's nexthop).
 */
export async function guardCycle(port: KernelPort, config: Config, cycle: Cycle): Promise<Cycle> {
  const kernel = cycle.facts.kernel;
  const configured = new Set([config.tableBase, ...config.uplinks.map((u) => u.table)]);
  const { changes, kept } = await keepNexthopsInUse(port, cycle.changes, [config.protocol],
    (keep) => diff(cycle.plan.desired, kernel, config, keep), (id) => configured.has(id));
  return { ...cycle, changes, kept };
}

/**
 * Applies one cycle's changes: the nft change (one `nft` process) and the netlink changes (in order
 * through reconcile()) side by side, since neither needs the other first: a fwmark rule matches nothing
 * until the marks exist, and a marked packet without its fwmark rule is routed by main, as before uplinkd.
 * A failed nft change does not stop the routing: it is returned as `nftFailed` (UplinkdError), as failed
 * netlink changes are in `failed`. Never rejects.
 */
export async function applyChanges(port: KernelPort, changes: CycleChanges, nft: NftRunner): Promise<CycleResult> {
  const pinning = changes.nft ? applyPinningChange(changes.nft, nft).then(
    () => ({ nftApplied: changes.nft! }),
    (err: unknown) => ({ nftFailed: err instanceof UplinkdError ? err : new UplinkdError('io', err instanceof Error ? err.message : String(err), { cause: err }) }),
  ) : Promise.resolve({});
  const [result, nftOutcome] = await Promise.all([reconcile(port, changes.netlink), pinning]);
  const standInFailed = result.failed.filter((f) => f.change.standIn);
  if (standInFailed.length === 0) return { ...result, ...nftOutcome };
  return { ...result, failed: result.failed.filter((f) => !f.change.standIn), standInFailed, ...nftOutcome };
}

/** The changes a cycle wants applied as they are (the CLI's `apply`; the daemon filters them first). */
function cycleChanges(cycle: Cycle): CycleChanges {
  return { netlink: cycle.changes, ...(cycle.pinning.change ? { nft: cycle.pinning.change } : {}) };
}

/**
 * observe -> computeCycle -> guardCycle -> applyChanges, once: what `uplinkd apply` does to the kernel (src/cli/oneshot.ts
 * applyOnce). Nexthops other programs use stay (`cycle.kept`).
 */
export async function runOnce(port: KernelPort, config: Config, options: ObserveOptions & { nft: NftRunner }): Promise<{ cycle: Cycle; result: CycleResult }> {
  const cycle = await guardCycle(port, config, computeCycle(config, await observe(port, config, options)));
  return { cycle, result: await applyChanges(port, cycleChanges(cycle), options.nft) };
}

/** What `uplinkd down` removes, and the nexthops it keeps because other programs use them. */
export interface Teardown extends CycleChanges {
  /** Kept nexthops (keepNexthopsInUse), each to be said (describeKept): `down` is then not complete. */
  kept: KeptNexthop[];
}

/**
 * What `uplinkd down` and `uplinkd run --cleanup` remove: every route, rule and nexthop of
 * `config`'s protocol in the whole kernel (any table, an earlier configuration's too) and
 * `table ip uplinkd` when it is there, but the nexthops other programs' routes or groups use
 * (`kept`: the kernel would delete those routes with them). Reads the kernel and the table, changes nothing.
 */
export async function observeTeardown(port: KernelPort, config: Config, nft: NftRunner): Promise<Teardown> {
  // Only what uplinkd owns: its protocol's routes (a filtered dump: the kernel walks every table but sends
  // only those) and its tables; never a foreign table, which on a BGP router holds a million routes.
  const owned: RouteInterest = { tables: [...ownedTables(config)].sort((a, b) => a - b), protocols: [config.protocol], devices: [] };
  const [kernel, table] = await Promise.all([port.snapshot(owned), readPinning(nft)]);
  const change = teardownPinning(table);
  const { changes, kept } = await keepNexthopsInUse(port, teardownChanges(config, kernel), [config.protocol],
    (keep) => teardownChanges(config, kernel, keep));
  return { netlink: changes, kept, ...(change ? { nft: change } : {}) };
}

export { reconcile, syncOwnedNames, removeOwnedNames };
export { formatPinningChange, type PinningChange, type PinningPlan };
export { describeKept, type KeptNexthop };
