// Other programs' routes on uplinkd's nexthops. A route may name any nexthop object by id (`ip route add
// 203.0.113.0/24 nhid 1042 table 3000`), and deleting a nexthop silently deletes every route using it, and shrinks
// (or, when it was the last member, deletes) the groups holding it (net/ipv4/nexthop.c remove_nexthop,
// remove_nexthop_from_groups). So before a nexthop of ours goes, the routes and groups of other programs that use
// it are looked for; such a nexthop is kept, and said so, since deleting it would change what another program made.
import type { KernelState, Nexthop, Route } from '../model/types';
import { formatNexthop, formatProtocol, formatRoute } from '../model/text';

/** One of uplinkd's nexthops kept instead of deleted, and what of other programs uses it. */
export interface KeptNexthop {
  /** The nexthop as the kernel reports it. */
  nexthop: Nexthop;
  /** Other programs' routes (any table) on it, or on a group of ours holding it. */
  routes: Route[];
  /** Other programs' nexthop groups holding it. */
  groups: Nexthop[];
  /** Ids of uplinkd's own groups, kept for such users, that hold it (deleting a member changes its group). */
  memberOf: number[];
}

/**
 * Which of the owned nexthops `deleting` (ids a change list deletes, to be gone or recreated) are in use by other
 * programs, in `observed` (its nexthops: all of them, as every snapshot has; those of `deleting` not there are not
 * kept) and `routes` (routes that may use them, any table: KernelPort.nexthopUsers): a route of a protocol not in `owned` whose nhid is one of
 * them, or a nexthop group of such a protocol holding one; then the members among `deleting` of a group kept so.
 * Pure; sorted by nexthop id; empty when nothing else uses them.
 */
export function nexthopsInForeignUse(
  deleting: ReadonlySet<number>, observed: Pick<KernelState, 'nexthops'>, routes: readonly Route[], owned: readonly number[],
): KeptNexthop[] {
  const byId = new Map(observed.nexthops.map((n) => [n.id, n]));
  const kept = new Map<number, KeptNexthop>();
  const entry = (id: number): KeptNexthop | undefined => {
    const nexthop = byId.get(id);
    if (!nexthop || !deleting.has(id)) return undefined;
    let k = kept.get(id);
    if (!k) kept.set(id, k = { nexthop, routes: [], groups: [], memberOf: [] });
    return k;
  };
  const seen = new Set<string>();
  for (const r of routes) {
    if (r.nhid === undefined || owned.includes(r.protocol)) continue;
    const key = JSON.stringify(r);
    if (seen.has(key)) continue;
    seen.add(key);
    entry(r.nhid)?.routes.push(r);
  }
  for (const g of observed.nexthops) {
    if (!g.group || owned.includes(g.protocol)) continue;
    for (const m of g.group) entry(m.id)?.groups.push(g);
  }
  // A kept group of ours keeps its members: deleting one would change the group the other program's routes use.
  for (const k of [...kept.values()]) {
    for (const m of k.nexthop.group ?? []) entry(m.id)?.memberOf.push(k.nexthop.id);
  }
  return [...kept.values()].sort((a, b) => a.nexthop.id - b.nexthop.id);
}

/**
 * One line for people: which nexthop is kept, what of which program (by protocol) uses it, and what to do. For
 * `uplinkd down`'s stderr, the daemon's log and status.
 */
export function describeKept(k: KeptNexthop): string {
  const users = [
    ...k.routes.map((r) => `route ${formatRoute(r)} (protocol ${formatProtocol(r.protocol)})`),
    ...k.groups.map((g) => `nexthop group ${formatNexthop(g)} (protocol ${formatProtocol(g.protocol)})`),
    ...k.memberOf.map((id) => `uplinkd's group id ${id}, kept for the same reason`),
  ];
  return `nexthop ${formatNexthop(k.nexthop)} kept: deleting it would make the kernel delete or change what another `
    + `program made: ${users.join('; ')}. Move that route or group off nexthop ${k.nexthop.id} (e.g. \`ip route replace `
    + `<prefix> via <gateway> dev <device> table <table>\`) or delete it; uplinkd deletes the nexthop at its next `
    + 'cycle (the daemon) or `uplinkd down` once nothing else uses it';
}
