// Foreign objects in uplinkd's slots: a nexthop holding an id uplinkd plans, a route holding the
// table+dst+metric of one of its routes, a rule that the kernel consults before one of uplinkd's (same
// priority: the kernel keeps insertion order, which is the dump order) and that takes its packets.
// uplinkd never changes them (docs/design.md, "What uplinkd owns"), so while one is there the kernel
// cannot match the plan: the planner names them and status says so. Pure.
import type { Config } from '../config/types';
import type { DesiredState, KernelState, Route, Rule } from '../model/types';
import { compareNexthops, routeKey, sortRoutes } from '../model/identity';
import { DEFAULT_DST, formatNexthop, formatRoute, formatRule } from '../model/text';
import { consultedBefore, shadows } from './admin-rules';

/** A foreign object blocking one of uplinkd's: `text` for people; `uplink` is the uplink blocked, absent for the balanced default. */
export interface Collision {
  uplink?: string;
  text: string;
}

/** How many rule priorities uplinkd uses from config.rulePriority on (src/config/load.ts RULE_BAND). */
const BAND_PRIORITIES = 1000;

/** Ids of nexthops uplinkd's config plans (its uplinks' tables and tableBase) that a foreign nexthop holds (NHA_ID, include/uapi/linux/nexthop.h). */
export function foreignNexthopIds(config: Config, kernel: KernelState): Set<number> {
  const ids = new Set([config.tableBase, ...config.uplinks.map((u) => u.table)]);
  return new Set(kernel.nexthops.filter((n) => n.protocol !== config.protocol && ids.has(n.id)).map((n) => n.id));
}

/**
 * The routes of `kernel` in `tables` that are not of `protocol` (uplinkd's), sorted, each with the route of `planned`
 * whose slot it holds (table, destination and metric: the kernel's route identity), if any. Usually there is no
 * such route: the index of the (thousands of) planned routes is built only when there is one.
 */
export function foreignRoutesIn(tables: ReadonlySet<number>, kernel: KernelState, planned: readonly Route[], protocol: number): { route: Route; holds?: Route }[] {
  const foreign = kernel.routes.filter((r) => r.protocol !== protocol && tables.has(r.table));
  if (foreign.length === 0) return [];
  const byKey = new Map(planned.map((r) => [routeKey(r), r]));
  return sortRoutes(foreign).map((route) => {
    const holds = byKey.get(routeKey(route));
    return holds ? { route, holds } : { route };
  });
}

/**
 * The foreign objects that hold a slot of `desired` (plan().desired) in `kernel`: nexthops by id; routes by
 * table+dst+metric (the kernel's route identity); rules within uplinkd's priority band (rulePriority ..
 * rulePriority+999) that the kernel consults before one of uplinkd's rules (consultedBefore), match all its packets
 * (shadows) and send them elsewhere for certain (an action other than lookup, or a lookup in a table with a default route). Each is attributed to the uplink whose table it concerns. `name` names one of
 * uplinkd's rules for people. Sorted by kind, then identity. Throws nothing.
 */
export function blockingCollisions(config: Config, kernel: KernelState, desired: DesiredState, name: (r: Rule) => string): Collision[] {
  const byTable = new Map(config.uplinks.map((u) => [u.table, u.name]));
  const at = (table: number | undefined): { uplink?: string } => {
    const uplink = table === undefined ? undefined : byTable.get(table);
    return uplink === undefined ? {} : { uplink };
  };
  const out: Collision[] = [];
  const wantedIds = new Set(desired.nexthops.map((n) => n.id));
  for (const n of kernel.nexthops.filter((n) => n.protocol !== config.protocol && wantedIds.has(n.id)).sort(compareNexthops)) {
    out.push({ ...at(n.id), text: `foreign nexthop '${formatNexthop(n)}' holds nexthop id ${n.id}, which uplinkd needs` });
  }
  for (const { route: r, holds } of foreignRoutesIn(new Set(desired.routes.map((r) => r.table)), kernel, desired.routes, config.protocol)) {
    if (holds) out.push({ ...at(r.table), text: `foreign route '${formatRoute(r)}' holds the place of uplinkd's '${formatRoute(holds)}'` });
  }
  const band = (r: Rule): boolean => r.priority >= config.rulePriority && r.priority < config.rulePriority + BAND_PRIORITIES;
  // A lookup takes a packet only when its table has a route for it: for certain when that table has a default route.
  const candidates = kernel.rules.filter((x) => x.protocol !== config.protocol && band(x));
  const defaults = new Set(candidates.length === 0 ? [] : kernel.routes.filter((r) => r.dst === DEFAULT_DST && r.type === 'unicast').map((r) => r.table));
  const takesAll = (r: Rule): boolean => r.action !== 'lookup' || (r.suppressPrefixlen === undefined && defaults.has(r.table));
  for (const r of candidates.filter(takesAll)) {
    const taken = desired.rules.find((o) => consultedBefore(kernel.rules, r, o) && shadows(r, o) && !(r.action === o.action && r.table === o.table));
    if (taken) {
      out.push({ ...at(taken.table), text: `foreign rule '${formatRule(r)}' comes before uplinkd's rule for ${name(taken)} ('${formatRule(taken)}') and takes its packets` });
    }
  }
  return out;
}
