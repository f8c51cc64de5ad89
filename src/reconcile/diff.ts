// The smallest ordered change from what the kernel holds to what the planner wants.
// Only uplinkd's own objects are ever changed (protocol = config.protocol). A desired object whose identity is taken by
// a foreign object is left alone: the kernel would refuse it (EEXIST), and the planner warns.
import type { Config } from '../config/types';
import type { Change, DesiredState, KernelState, Nexthop, Route, Rule } from '../model/types';
import {
  canonicalNexthop, canonicalRoute, canonicalRule, compareNexthops, compareRoutes, compareRules, RouteMap, ruleKey, sameNexthop, sameRoute,
} from '../model/identity';

/**
 * Which observed objects belong to uplinkd: those carrying its protocol number (`config.protocol`, default 117;
 * rtm_protocol of routes, FRA_PROTOCOL of rules, NHA_PROTOCOL of nexthops), in any table and at any priority, so
 * that what an earlier configuration made (other tables, another rule band) is still recognised and removed rather
 * than left behind. Returns one predicate per object kind.
 */
export function ownership(config: Config): {
  route: (r: Route) => boolean; rule: (r: Rule) => boolean; nexthop: (n: Nexthop) => boolean;
} {
  return {
    route: (r) => r.protocol === config.protocol,
    rule: (r) => r.protocol === config.protocol,
    nexthop: (n) => n.protocol === config.protocol,
  };
}

/**
 * The kernel cannot turn a nexthop into a group (or back), nor change a resilient group's bucket count
 * (net/ipv4/nexthop.c refuses both on NLM_F_REPLACE): such a change is a delete and an add.
 */
function needsRecreate(old: Nexthop, want: Nexthop): boolean {
  if (Boolean(old.group) !== Boolean(want.group) || Boolean(old.resilient) !== Boolean(want.resilient)) return true;
  return old.resilient !== undefined && want.resilient !== undefined && old.resilient.buckets !== want.resilient.buckets;
}

/**
 * Whether group `want` is group `have` without some members that are deleted anyway (`deleted`): deleting a
 * nexthop takes it out of its groups (net/ipv4/nexthop.c remove_nexthop_from_groups), so the group needs no
 * replace of its own. That matters beside a large routing table: a replace of a group that routes use makes
 * the kernel walk every route of every table (__nexthop_replace_notify), a member's delete does not.
 */
function shrunkByDeletes(have: Nexthop, want: Nexthop, deleted: ReadonlySet<number>): boolean {
  if (!have.group || !want.group || want.group.length === 0 || !have.group.some((m) => deleted.has(m.id))) return false;
  return sameNexthop({ ...have, group: have.group.filter((m) => !deleted.has(m.id)) }, want);
}

/** The first id tried for a stand-in nexthop: far above tables and the ids people pick by hand. */
export const STAND_IN_ID_BASE = 0xfff00000;

/**
 * Stand-ins for the nexthop replaces of a group that routes use (the balanced default), so that the kernel never
 * walks the routing tables for them. A replace of a nexthop group that a route uses, or of a member of one, makes
 * the kernel walk every route of every table (net/ipv4/nexthop.c __nexthop_replace_notify ->
 * fib_info_notify_update): tens of milliseconds of system time beside a full BGP table, on every renumbering. The
 * swap around the replaces: add a stand-in for each replaced member and a stand-in group (the wanted group with those
 * members), move the routes using the group onto the stand-in group (a route replace does not walk), do the replaces
 * in place (the group is unused then), move the routes back, delete the stand-ins. The end state is the one the
 * plain replaces make, the group keeps its id and its resilient buckets; only new connections in the moment between
 * are spread by the stand-in's fresh buckets. Hence only with flow pinning on, where established connections do not
 * use the buckets (docs/pinning.md); without it the buckets are what keeps NATed flows on their uplink.
 *
 * Not done for a group some route outside `desired` uses (its walk happens anyway) or that is recreated. Stand-in
 * ids: the lowest free ids from STAND_IN_ID_BASE. Returns the changes before and after the replaces, each marked
 * `standIn`; empty lists when nothing is to swap.
 */
function standInSwap(
  replaces: readonly Nexthop[], desired: DesiredState, observed: KernelState, owns: ReturnType<typeof ownership>, recreated: ReadonlySet<number>,
): { before: Change[]; after: Change[] } {
  const before: Change[] = [];
  const after: Change[] = [];
  if (replaces.length === 0) return { before, after };
  const replaced = new Map(replaces.map((n) => [n.id, n]));
  const taken = new Set([...observed.nexthops.map((n) => n.id), ...desired.nexthops.map((n) => n.id)]);
  let nextId = STAND_IN_ID_BASE;
  const freeId = (): number => {
    while (taken.has(nextId)) nextId++;
    taken.add(nextId);
    return nextId;
  };
  const desiredRoutes = new Set(desired.routes.filter((r) => r.nhid !== undefined).map((r) => JSON.stringify(canonicalRoute(r))));
  const observedGroups = new Set(observed.nexthops.filter((n) => n.group && owns.nexthop(n)).map((n) => n.id));
  for (const group of desired.nexthops) {
    if (!group.group || !observedGroups.has(group.id) || recreated.has(group.id)) continue;
    const members = group.group.filter((m) => replaced.has(m.id));
    if (!replaced.has(group.id) && members.length === 0) continue;
    const users = observed.routes.filter((r) => r.nhid === group.id);
    const movable = users.filter((r) => owns.route(r) && desiredRoutes.has(JSON.stringify(canonicalRoute(r))));
    if (movable.length === 0 || movable.length !== users.length) continue;
    const standIns = new Map(members.map((m) => [m.id, { ...replaced.get(m.id)!, id: freeId() }]));
    const standInGroup: Nexthop = { ...group, id: freeId(), group: group.group.map((m) => ({ ...m, id: standIns.get(m.id)?.id ?? m.id })) };
    const wanted = desired.routes.filter((r) => r.nhid === group.id);
    before.push(
      ...[...standIns.values()].map((nexthop): Change => ({ op: 'add', kind: 'nexthop', nexthop, standIn: true })),
      { op: 'add', kind: 'nexthop', nexthop: standInGroup, standIn: true },
      ...wanted.map((route): Change => ({ op: 'replace', kind: 'route', route: { ...route, nhid: standInGroup.id }, standIn: true })),
    );
    after.push(
      ...wanted.map((route): Change => ({ op: 'replace', kind: 'route', route, standIn: true })),
      { op: 'del', kind: 'nexthop', nexthop: canonicalNexthop(standInGroup), standIn: true },
      ...[...standIns.values()].map((n): Change => ({ op: 'del', kind: 'nexthop', nexthop: canonicalNexthop(n), standIn: true })),
    );
  }
  return { before, after };
}

/** Routes through a gateway come after the link routes that make it reachable. */
function routeAddOrder(a: Route, b: Route): number {
  const rank = (r: Route): number => (r.gateway !== undefined || r.nhid !== undefined ? 1 : 0);
  return rank(a) - rank(b) || compareRoutes(a, b);
}

function groupByKey<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = m.get(k);
    if (group) group.push(item);
    else m.set(k, [item]);
  }
  return m;
}

const NONE: ReadonlySet<number> = new Set();

/**
 * The smallest ordered list of changes that turns `observed` (a kernel dump) into `desired` (plan().desired).
 *
 * Shapes: `desired` and `observed` hold routes, rules and nexthops (src/model/types.ts); `config.protocol` (default
 * 117, rtm_protocol / FRA_PROTOCOL / NHA_PROTOCOL) decides which observed objects are uplinkd's (ownership()). Pure:
 * the result depends on the sets given, not on their order (every list is sorted by src/model/identity.ts).
 * Throws nothing.
 *
 * Identities (the kernel's own): a route is table+dst+metric (a second add is EEXIST; NLM_F_REPLACE swaps it in
 * place, so a changed route is one `replace`); a nexthop is its id (changed in place with `replace`, except that
 * the kernel cannot turn a nexthop into a group or back, nor change a resilient group's bucket count: then it is
 * deleted and added again); a rule is every field but its protocol (the kernel has no rule replace, so a changed
 * rule is an `add` of the new one and a `del` of the old one). Only uplinkd's objects are changed or deleted; a
 * desired object whose identity a foreign object holds is skipped (the planner warns); extra owned copies of one
 * identity are deleted.
 *
 * Order, the contract the reconciler relies on (it applies the list in this order, see reconcile()):
 *  1. deletes of nexthops that must be recreated, groups before plain nexthops (a group goes before the members
 *     it holds). This is the only break before make, forced by the kernel;
 *  2. nexthop adds, plain nexthops before groups (NHA_GROUP may name only existing nexthops);
 *  3. route adds and replaces, routes with a device only before routes through a gateway or a nexthop id (the
 *     gateway must be reachable by a link route first; an nhid route needs its nexthop from step 2); a route
 *     using a recreated nexthop is replaced, since deleting the nexthop deleted it;
 *  4. rule adds: only once the tables they point at hold their routes;
 *  5. nexthop replaces, plain nexthops before groups (a group may name a member added in step 2); a group
 *     holding a recreated member is replaced too, since deleting the member took it out of the group. They
 *     come after the routes and rules because nothing above needs them (each object already exists) and the
 *     kernel walks every route of every table for each replace of a nexthop that routes use, or of a member of
 *     such a group (net/ipv4/nexthop.c, __nexthop_replace_notify -> fib_info_notify_update): tens of
 *     milliseconds beside a full BGP table, which a renumbered uplink's table and rule need not wait for.
 *     With flow pinning on, a stand-in swap (standInSwap) surrounds them so that the walk does not happen:
 *     stand-ins added and the group's routes moved onto them before, moved back and stand-ins deleted after;
 *  6. rule deletes: after the adds, so a renumbered address or a moved rule is never without a rule
 *     (make before break);
 *  7. route deletes: after no rule points traffic at them any more;
 *  8. nexthop deletes, groups before plain nexthops: after the routes using them are gone (deleting a nexthop
 *     silently deletes its routes and shrinks its groups: a group that only loses deleted members is therefore
 *     not replaced, see shrunkByDeletes).
 * Within a step, objects are sorted by identity (compareNexthops, compareRoutes, compareRules). Deletes carry the
 * canonical form (what identifies the object, not every attribute the kernel echoed).
 *
 * `keep`: ids of owned nexthops that must not be deleted, not even to be recreated, because another program's route
 * or group uses them (src/reconcile/nexthop-users.ts): the kernel would delete that route with them. They are left as
 * they are; a wanted group that held one is replaced without it rather than shrunk by its delete.
 */
export function diff(desired: DesiredState, observed: KernelState, config: Config, keep: ReadonlySet<number> = NONE): Change[] {
  const owns = ownership(config);
  const isGroup = (n: Nexthop): boolean => n.group !== undefined;

  // Nexthops, by id.
  const ownedNh = new Map(observed.nexthops.filter(owns.nexthop).map((n) => [n.id, n]));
  const foreignNhIds = new Set(observed.nexthops.filter((n) => !owns.nexthop(n)).map((n) => n.id));
  const nhUpserts: { op: 'add' | 'replace'; nexthop: Nexthop }[] = [];
  const recreated = new Set<number>();
  const preDeletes: Nexthop[] = [];
  const desiredNhIds = new Set(desired.nexthops.map((n) => n.id));
  const deletedNhIds = new Set([...ownedNh.keys()].filter((id) => !desiredNhIds.has(id) && !keep.has(id)));
  for (const want of [...desired.nexthops].sort(compareNexthops)) {
    const have = ownedNh.get(want.id);
    if (!have) {
      if (!foreignNhIds.has(want.id)) nhUpserts.push({ op: 'add', nexthop: want });
    } else if (needsRecreate(have, want)) {
      if (keep.has(want.id)) continue;
      recreated.add(want.id);
      preDeletes.push(have);
      nhUpserts.push({ op: 'add', nexthop: want });
    } else if (!sameNexthop(have, want) && !shrunkByDeletes(have, want, deletedNhIds)) {
      nhUpserts.push({ op: 'replace', nexthop: want });
    }
  }
  // Deleting a nexthop takes it out of its groups and removes the routes using it: refresh those.
  const upserted = new Set(nhUpserts.map((c) => c.nexthop.id));
  const disturbed = new Set(recreated);
  for (const want of desired.nexthops) {
    if (want.group?.some((m) => recreated.has(m.id))) {
      disturbed.add(want.id);
      if (!upserted.has(want.id)) nhUpserts.push({ op: 'replace', nexthop: want });
    }
  }
  const nhDeletes = [...ownedNh.values()].filter((n) => deletedNhIds.has(n.id));

  // Routes, by table+dst+metric: one index of the observed routes (ours and foreign) per key, looked up once per
  // desired route; a no-op cycle at 64 uplinks walks 4,000 routes of each side here.
  const routesByKey = new RouteMap<{ owned?: Route; more?: Route[]; foreign: boolean; desired: boolean }>();
  const newEntry = () => ({ owned: undefined, more: undefined, foreign: false, desired: false });
  for (const r of observed.routes) {
    const entry = routesByKey.upsert(r, newEntry);
    if (!owns.route(r)) entry.foreign = true;
    else if (!entry.owned) entry.owned = r;
    else (entry.more ??= []).push(r);
  }
  const routeUpserts: { op: 'add' | 'replace'; route: Route }[] = [];
  for (const want of desired.routes) {
    const entry = routesByKey.upsert(want, newEntry);
    entry.desired = true;
    const have = entry.owned;
    if (!have) {
      if (!entry.foreign) routeUpserts.push({ op: 'add', route: want });
    } else if (!sameRoute(have, want) || (want.nhid !== undefined && disturbed.has(want.nhid))) {
      routeUpserts.push({ op: 'replace', route: want });
    }
  }
  // Sorting only what changes: a no-op cycle over thousands of routes sorts nothing.
  routeUpserts.sort((a, b) => routeAddOrder(a.route, b.route));
  // Of several owned routes with one key, the first observed is the one kept when it is wanted.
  const routeDeletes: Route[] = [];
  routesByKey.forEach(({ owned, more, desired: wanted }) => {
    if (owned && !wanted) routeDeletes.push(owned);
    if (more) routeDeletes.push(...more);
  });

  // Rules, by every field: a changed rule is a new rule.
  const ownedRules = groupByKey(observed.rules.filter(owns.rule), ruleKey);
  const foreignRuleKeys = new Set(observed.rules.filter((r) => !owns.rule(r)).map(ruleKey));
  const ruleAdds: Rule[] = [];
  const desiredRuleKeys = new Set<string>();
  for (const want of desired.rules) {
    const key = ruleKey(want);
    if (desiredRuleKeys.has(key)) continue;
    desiredRuleKeys.add(key);
    if (!ownedRules.has(key) && !foreignRuleKeys.has(key)) ruleAdds.push(want);
  }
  const ruleDeletes: Rule[] = [];
  for (const [key, rules] of ownedRules) ruleDeletes.push(...(desiredRuleKeys.has(key) ? rules.slice(1) : rules));

  // Deletions carry the canonical form: what identifies the object, not what the kernel echoed.
  const nhDel = (n: Nexthop): Change => ({ op: 'del', kind: 'nexthop', nexthop: canonicalNexthop(n) });
  const upserts = nhUpserts.sort((a, b) => compareNexthops(a.nexthop, b.nexthop))
    .map(({ op, nexthop }): Change => ({ op, kind: 'nexthop', nexthop }));
  const upsertIsGroup = (c: Change): boolean => c.kind === 'nexthop' && isGroup(c.nexthop);
  const adds = upserts.filter((c) => c.op === 'add');
  const replaces = upserts.filter((c) => c.op === 'replace');
  const swap = config.pinning?.enabled
    ? standInSwap(replaces.flatMap((c) => (c.kind === 'nexthop' ? [c.nexthop] : [])), desired, observed, owns, recreated)
    : { before: [], after: [] };
  return [
    ...preDeletes.filter(isGroup).map(nhDel),
    ...preDeletes.filter((n) => !isGroup(n)).map(nhDel),
    ...adds.filter((c) => !upsertIsGroup(c)),
    ...adds.filter(upsertIsGroup),
    ...routeUpserts.map(({ op, route }): Change => ({ op, kind: 'route', route })),
    // Sorting only what changes, as for routes (of duplicates, which differ at most in protocol, the first listed is added).
    ...ruleAdds.sort(compareRules).map((rule): Change => ({ op: 'add', kind: 'rule', rule })),
    ...swap.before,
    ...replaces.filter((c) => !upsertIsGroup(c)),
    ...replaces.filter(upsertIsGroup),
    ...swap.after,
    ...ruleDeletes.sort(compareRules).map((rule): Change => ({ op: 'del', kind: 'rule', rule: canonicalRule(rule) })),
    ...routeDeletes.sort(compareRoutes).map((route): Change => ({ op: 'del', kind: 'route', route: canonicalRoute(route) })),
    ...nhDeletes.filter(isGroup).sort(compareNexthops).map(nhDel),
    ...nhDeletes.filter((n) => !isGroup(n)).sort(compareNexthops).map(nhDel),
  ];
}
