// The planner: Config + Facts -> the kernel objects uplinkd wants (docs/design.md, "What uplinkd
// owns"), plus a status line per uplink. Pure and deterministic: every list read from the facts is
// sorted before use, so the order the kernel reported things in does not matter.
import type { Config, UplinkConfig } from '../config/types';
import type { Facts, HealthVerdict } from '../model/facts';
import type { Cidr, DesiredState, Ipv4, KernelState, Link, Nexthop, Route, Rule } from '../model/types';
import { compareNexthops, sortRules } from '../model/identity';
import { pinMarks } from '../nft/marks';
import { monitorWarnings } from '../config/monitor-warnings';
import { missingGatewayReason } from './lease-reason';
import { fwmarkRuleWarnings } from './mark-warnings';
import { compilePolicies, type PolicyStatus } from './policies';
import { adminRuleMessages, ruleName } from './admin-rules';
import { localNetworks, overlapWarnings, providerNetworks } from './connected';
import {
  connectedNetwork, defaultRouteCandidates, gatewayPath, globalAddresses, isPointToPoint, learnedDefault,
  type DefaultCandidate, type DefaultPath, type UplinkAddress,
} from './uplink-kinds';
import { formatRoute, formatNexthop } from '../model/text';
import { tableRoutes } from './table-routes';
import { MAIN_TABLE } from '../model/types';
import { blockingCollisions, foreignNexthopIds, foreignRoutesIn, type Collision } from './collisions';
import { objectIdentity } from '../model/identity';

/**
 * Why an uplink does (`ready`) or does not carry traffic: its interface is missing (`waiting`), down or without
 * carrier (`link-down`), it lacks an address or gateway, or health checks say down (`unhealthy`).
 */
export type UplinkState = 'ready' | 'waiting' | 'link-down' | 'no-address' | 'no-gateway' | 'unhealthy';

/** What the planner found about one uplink: shown by `uplinkd status`, the status page and the metrics. */
export interface UplinkStatus {
  name: string;
  interface: string;
  table: number;
  dhcp: boolean;
  state: UplinkState;
  reason: string;
  address?: Ipv4;
  prefixlen?: number;
  /** Peer of a point-to-point address. */
  peer?: Ipv4;
  /** The connected network of the address (the peer's on a point-to-point link; none for a /32 without peer). */
  network?: Cidr;
  gateway?: Ipv4;
  /** The gateway is outside the connected network: routes and nexthops carry `onlink`. */
  onlink?: boolean;
  /** The default goes straight out of the device (`default dev IF`, point-to-point links). */
  deviceDefault?: boolean;
  /** Where the default path came from: the config, the system's routes, a lease, or the link being point-to-point. */
  gatewaySource?: 'config' | 'route' | 'lease' | 'link';
  health: HealthVerdict;
  /** Weight in the balance group (after a degraded reduction). */
  weight: number;
  tier: number;
  inDefault: boolean;
  /** Health checks say down, but every uplink does, so this one carries the default anyway (last resort). */
  lastResort?: boolean;
  /**
   * Foreign objects holding what this uplink needs (its nexthop id, a route's slot in its table, a rule's place before
   * ours): one message each. While any is there the kernel cannot match the plan for this uplink.
   */
  collisions?: string[];
}

/**
 * The uplink's default path for people: `198.51.100.1`, `172.31.1.1 onlink`, `dev ppp0` or `-`,
 * followed by where it was learned unless it is the config's: `(route)`, `(lease)`, `(link)`.
 */
export function describeDefaultPath(u: UplinkStatus): string {
  const path = u.gateway !== undefined ? `${u.gateway}${u.onlink ? ' onlink' : ''}` : u.deviceDefault ? `dev ${u.interface}` : undefined;
  if (path === undefined) return '-';
  return u.gatewaySource && u.gatewaySource !== 'config' ? `${path} (${u.gatewaySource})` : path;
}

/** plan()'s result. */
export interface Plan {
  desired: DesiredState;
  uplinks: UplinkStatus[];
  warnings: string[];
  /** Per policy: the uplink it uses now and why (src/plan/policies.ts); empty without policies. */
  policies: PolicyStatus[];
  /**
   * Foreign objects in uplinkd's slots (src/plan/collisions.ts): while there is one, the kernel does not match
   * the plan. `uplink` names the uplink it blocks (also in its status's `collisions`); absent: the balanced default.
   */
  collisions: Collision[];
}

/** Rule priorities relative to config.rulePriority (docs/design.md, rule layout). */
export const RULE_OFFSET = { pinned: 50, from: 100, oif: 110, suppressMain: 200, balance: 300 } as const;

/** What the planner worked out about one uplink before deciding the default route. */
interface Uplink {
  cfg: UplinkConfig;
  link?: Link;
  status: UplinkStatus;
  /** Usable for the default: link up with carrier, address, gateway, health not down. */
  usable: boolean;
  /** Degraded with onDegraded 'remove': usable, but kept out of the default while others can carry it. */
  degradedOut: boolean;
}

function linkProblem(link: Link | undefined): { state: UplinkState; reason: string } | undefined {
  if (!link) return { state: 'waiting', reason: 'interface does not exist' };
  if (!link.up) return { state: 'link-down', reason: 'interface is administratively down' };
  if (!link.lowerUp) return { state: 'link-down', reason: 'no carrier' };
  return undefined;
}

function resolveUplink(facts: Facts, defaults: Map<string, DefaultCandidate[]>, cfg: UplinkConfig, warnings: string[]): Uplink {
  const { kernel } = facts;
  const link = kernel.links.find((l) => l.name === cfg.interface);
  const health = facts.health[cfg.name] ?? 'unknown';
  const status: UplinkStatus = {
    name: cfg.name, interface: cfg.interface, table: cfg.table, dhcp: cfg.dhcp, state: 'ready', reason: '',
    health, weight: cfg.weight, tier: cfg.tier, inDefault: false,
  };
  const done = (state: UplinkState, reason: string): Uplink => {
    status.state = state;
    status.reason = reason;
    return { cfg, link, status, usable: state === 'ready', degradedOut: false };
  };

  // An absent interface (pppd not connected yet, a modem unplugged) is waited for: it comes back
  // under the same name, with a new ifindex, and the next cycle picks it up.
  const problem = linkProblem(link);
  if (problem?.state === 'waiting') return done(problem.state, `interface ${cfg.interface} does not exist`);

  // Address (and peer, on a point-to-point link).
  let own: UplinkAddress;
  if (cfg.dhcp) {
    const best = globalAddresses(kernel, cfg.interface)[0];
    if (!best) return done(problem?.state ?? 'waiting', problem?.reason ?? `waiting for an address on ${cfg.interface}`);
    own = { ip: best.address, prefixlen: best.prefixlen, ...(best.peer !== undefined && { peer: best.peer }) };
  } else if (cfg.address) {
    const present = kernel.addresses.some((a) => a.dev === cfg.interface && a.address === cfg.address!.ip);
    if (!present) return done(problem?.state ?? 'no-address', `${cfg.address.ip} is not on ${cfg.interface}`);
    own = { ip: cfg.address.ip, prefixlen: cfg.address.prefixlen, ...(cfg.peer !== undefined && { peer: cfg.peer }) };
  } else {
    return done('no-address', 'no address configured');
  }
  status.address = own.ip;
  status.prefixlen = own.prefixlen;
  if (own.peer !== undefined) status.peer = own.peer;
  const network = connectedNetwork(own);
  if (network !== undefined) status.network = network;

  // Default path: the config's gateway; else the system's default routes on the device (any table);
  // else the DHCP lease; else, on a point-to-point link, straight out of the device.
  const candidates = defaults.get(cfg.interface) ?? [];
  let path: DefaultPath | undefined;
  if (cfg.gateway !== undefined) {
    path = gatewayPath(own, cfg.gateway);
    status.gatewaySource = 'config';
  } else if ((path = learnedDefault(own, candidates))) {
    status.gatewaySource = 'route';
  } else if (cfg.dhcp) {
    const lease = facts.leases
      .filter((l) => l.interface === cfg.interface && l.address === own.ip && l.gateway !== undefined && l.gateway !== own.ip)
      .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))[0];
    if (lease) {
      path = gatewayPath(own, lease.gateway!);
      status.gatewaySource = 'lease';
      warnings.push(`uplink ${cfg.name}: gateway ${lease.gateway} taken from the ${lease.client} lease ${lease.file} (no default route on ${cfg.interface})`);
    }
  }
  // A gateway that is one of the router's own addresses: the kernel refuses the nexthop on-link ("Nexthop has
  // invalid gateway") and inside the network keeps its packets here. No default path: said plainly, not retried.
  const local = path?.gateway !== undefined ? kernel.addresses.find((a) => a.address === path!.gateway) : undefined;
  if (local) path = undefined;
  if (!path && !local && isPointToPoint(link, own)) {
    path = { onlink: false };
    status.gatewaySource = 'link';
  }
  if (path) {
    if (path.gateway !== undefined) status.gateway = path.gateway;
    if (path.onlink) status.onlink = true;
    if (path.gateway === undefined) status.deviceDefault = true;
  }

  if (problem) return done(problem.state, problem.reason);
  if (local) {
    return done('no-gateway', `gateway ${local.address} is an address of this router (on ${local.dev}): a route via it never leaves the router (uplinkd check reports it)`);
  }
  if (!path) {
    return done('no-gateway', cfg.dhcp
      ? missingGatewayReason(facts.leases, cfg.interface, own.ip, network ?? `${own.ip}/${own.prefixlen}`, (g) => g !== own.ip)
      : `no default route on ${cfg.interface}`);
  }
  if (health === 'down') return done('unhealthy', 'health checks failing');

  const onDegraded = cfg.monitor?.onDegraded ?? 'keep';
  const uplink = done('ready', health === 'degraded' ? `degraded (${onDegraded})` : 'ok');
  if (health === 'degraded' && onDegraded === 'reduce') status.weight = Math.max(1, Math.floor(cfg.weight / 2));
  uplink.degradedOut = health === 'degraded' && onDegraded === 'remove';
  return uplink;
}

/**
 * When every uplink is judged down by its health checks while links, addresses and gateways are
 * fine, the monitor may be what is wrong (its only target died): those uplinks stay usable as a
 * last resort (mwan3's `last_resort default`), so uplinkd never causes a total outage itself.
 */
function lastResort(uplinks: Uplink[], warnings: string[]): void {
  if (uplinks.some((u) => u.usable)) return;
  const judged = uplinks.filter((u) => u.status.state === 'unhealthy');
  if (judged.length === 0) return;
  for (const u of judged) {
    u.usable = true;
    u.status.lastResort = true;
    u.status.reason = 'LAST RESORT: health checks failing on every uplink, kept in the default anyway';
  }
  warnings.push(`LAST RESORT: every uplink is judged down by its health checks while its link is up; the default keeps ${judged.map((u) => u.cfg.name).join(', ')} (are the probe targets themselves down?)`);
}

/** The uplinks that carry the default: the lowest tier with a usable uplink; all of it (balance) or its first (failover). */
function chooseDefault(config: Config, uplinks: Uplink[], warnings: string[]): Uplink[] {
  let candidates = uplinks.filter((u) => u.usable && !u.degradedOut);
  if (candidates.length === 0 && uplinks.some((u) => u.usable)) {
    candidates = uplinks.filter((u) => u.usable);
    warnings.push(`every usable uplink is degraded: keeping ${candidates.map((u) => u.cfg.name).join(', ')} in the default anyway`);
  }
  if (candidates.length === 0) return [];
  const tier = Math.min(...candidates.map((u) => u.cfg.tier));
  const inTier = candidates.filter((u) => u.cfg.tier === tier);
  return config.default === 'balance' ? inTier : inTier.slice(0, 1);
}

const clampWeight = (w: number): number => Math.min(256, Math.max(1, Math.round(w)));

/** Routes that may be added: the kernel refuses routes through an interface that is missing or administratively down. */
function routable(link: Link | undefined): boolean {
  return link !== undefined && link.up;
}

/**
 * The kernel objects uplinkd wants, from the configuration and what is observed (docs/design.md, "What uplinkd
 * owns"). Pure and deterministic: the result depends on the sets in `facts`, not their order. Throws nothing:
 * what cannot be done (a missing interface, no gateway yet, a foreign object in the way) is a status or a warning.
 *
 * Returns `desired`, sorted by identity (compareRoutes, compareRules, compareNexthops), all with protocol
 * `config.protocol`:
 *  - per uplink, in its table (`cfg.table`): the link route of its connected network with `src` its address and its
 *    default (`via gateway [onlink]`, or `dev IF` on a point-to-point link), both only while its interface exists
 *    and is up (the kernel refuses routes through a down device); the LAN networks (connected.ts); the other
 *    uplinks' networks whose interfaces are up; 127.0.0.0/8 (LARTC HOWTO 4.2.1 split access);
 *  - rules at `config.rulePriority` + RULE_OFFSET: `fwmark/mask lookup` per pinned uplink (+50), `from ADDR/32
 *    lookup` (+100, once it has an address; one more for each other global address on its interface unless another
 *    uplink shares the interface) and `oif IF lookup` (+110) per uplink, the policies' rules
 *    (policies.ts), `lookup main suppress_prefixlength 0` (+200), `lookup tableBase` (+300);
 *  - a nexthop per usable uplink and per uplink out on its health checks alone (id = its table) and a resilient group (id = tableBase, weights 1..256) of the
 *    uplinks chosen for the default (usable and not kept out as degraded, unless all are; of those the lowest
 *    tier; `balance`: all of that tier, else its first), with `default nhid tableBase` in table tableBase.
 * Also `uplinks`, one status per configured uplink (state, reason, address, gateway and where it was learned,
 * health, weight), `warnings` for people, and `policies`, each policy's uplink now.
 *
 * The plan says WHAT, never in what order: diff() orders the changes (make before break).
 */
export function plan(config: Config, facts: Facts): Plan {
  const warnings: string[] = [];
  const { kernel } = facts;
  const proto = config.protocol;
  const defaults = defaultRouteCandidates(kernel, config.protocol);
  const uplinks = config.uplinks.map((cfg) => resolveUplink(facts, defaults, cfg, warnings));
  lastResort(uplinks, warnings);

  // Networks behind every non-uplink interface (LAN, bridges, tunnels), src/plan/connected.ts.
  const lanRoutes = localNetworks(config, kernel, warnings);
  // Routes through an uplink's own link that its provider brought into main (DHCP option 121 and the like).
  const providerRoutes = providerNetworks(config, kernel);

  const rules: Rule[] = [];
  const rule = (offset: number, r: Omit<Rule, 'priority' | 'protocol' | 'action'>): void => {
    rules.push({ priority: config.rulePriority + offset, action: 'lookup', protocol: proto, ...r });
  };

  for (const { cfg, status } of uplinks) {
    if (status.address !== undefined) {
      rule(RULE_OFFSET.from, { src: `${status.address}/32`, table: cfg.table });
      // More addresses on its interface (an alias for a service, a routed block on the WAN) are the provider's too:
      // the router's own connections bound to one must leave through it. Not when another uplink shares the interface.
      if (!config.uplinks.some((o) => o !== cfg && o.interface === cfg.interface)) {
        for (const a of globalAddresses(kernel, cfg.interface)) {
          if (a.address !== status.address) rule(RULE_OFFSET.from, { src: `${a.address}/32`, table: cfg.table });
        }
      }
    }
    rule(RULE_OFFSET.oif, { oif: cfg.interface, table: cfg.table });
  }
  // Pinned connections (their packets carry the uplink's mark, src/nft) keep their uplink
  // whatever the balance does; depends on the config only, like the oif rules.
  for (const m of pinMarks(config)) rule(RULE_OFFSET.pinned, { fwmark: m.mark, fwmask: config.pinning!.markMask, table: m.table });
  // Policies: between suppressMain and balance (src/plan/policies.ts has the layout).
  const policies = compilePolicies(config, uplinks.map((u) => ({ name: u.cfg.name, table: u.cfg.table, usable: u.usable, reason: u.status.reason })));
  rules.push(...policies.rules);
  warnings.push(...(config.warnings ?? []));
  rule(RULE_OFFSET.suppressMain, { table: MAIN_TABLE, suppressPrefixlen: 0 });
  rule(RULE_OFFSET.balance, { table: config.tableBase });

  // The balanced default: a nexthop per usable uplink, a resilient group of the chosen ones. An uplink whose nexthop
  // id a foreign nexthop holds, or whose nexthop the kernel refused last cycle as it is planned now, stays out of the
  // group (a group naming it would carry the foreign path, or be refused with it); its nexthop stays planned, so the
  // refusal is retried and the uplink joins once the kernel takes it. An uplink out on its health checks alone (link,
  // address and gateway in place) keeps its nexthop, out of the group: deleting it on every failover would make the
  // kernel delete any other program's route on it (`ip route add ... nhid 1002`), silently and for good.
  const foreignIds = foreignNexthopIds(config, kernel);
  const refused = facts.refused ?? new Set<string>();
  const nexthops: Nexthop[] = [];
  const joinable: Uplink[] = [];
  for (const u of uplinks) {
    if (!u.usable && u.status.state !== 'unhealthy') continue;
    const { gateway, onlink } = u.status;
    const nexthop: Nexthop = { id: u.cfg.table, protocol: proto, ...(gateway !== undefined && { gateway }), dev: u.cfg.interface, ...(onlink && { onlink }) };
    nexthops.push(nexthop);
    if (!u.usable || foreignIds.has(nexthop.id)) continue;
    if (refused.has(objectIdentity({ kind: 'nexthop', nexthop }))) {
      warnings.push(`uplink ${u.cfg.name}: kept out of the balanced default while the kernel refuses its nexthop ${nexthop.id} (retried)`);
      continue;
    }
    joinable.push(u);
  }
  const chosen = chooseDefault(config, uplinks.map((u) => (u.usable && !joinable.includes(u) ? { ...u, usable: false } : u)), warnings);
  for (const u of chosen) u.status.inDefault = true; // the same status objects as `uplinks`'
  // The group and its route exist only while the id is free; the route only while the group is not refused as planned.
  let balanced = chosen.length > 0;
  let blockedGroup: Nexthop[] = [];
  if (balanced) {
    const group: Nexthop = {
      id: config.tableBase,
      protocol: proto,
      group: chosen.map((u) => ({ id: u.cfg.table, weight: clampWeight(u.status.weight) })).sort((a, b) => a.id - b.id),
      resilient: { ...config.resilient },
    };
    if (foreignIds.has(group.id)) blockedGroup = [group];
    else nexthops.push(group);
    if (foreignIds.has(group.id) || refused.has(objectIdentity({ kind: 'nexthop', nexthop: group }))) balanced = false;
  }
  // The tables' routes (table-routes.ts), in a fixed field order so equal inputs have equal JSON.
  const routes = tableRoutes({
    protocol: proto,
    uplinks: uplinks.map(({ cfg, link, status: s }) => ({
      table: cfg.table, dev: cfg.interface, routable: routable(link),
      ...(s.address !== undefined && { address: s.address }), ...(s.network !== undefined && { network: s.network }),
      ...(s.gateway !== undefined && { gateway: s.gateway }), ...(s.onlink && { onlink: true }), ...(s.deviceDefault && { deviceDefault: true }),
      ...(providerRoutes.has(cfg.interface) && { provider: providerRoutes.get(cfg.interface)! }),
    })),
    lan: lanRoutes,
    ...(balanced && { balanceTable: config.tableBase }),
  });
  const sortedRules = sortRules(rules);

  warnings.push(...adminRuleMessages(config, kernel.rules, sortedRules, (r) => ruleName(config, policies.status, r)));
  warnings.push(...collisionWarnings(config, kernel, routes, nexthops));
  warnings.push(...fwmarkRuleWarnings(config, kernel));
  warnings.push(...overlapWarnings(lanRoutes, uplinks.map((u) => u.status)));
  warnings.push(...monitorWarnings(config, (name) => uplinks.find((u) => u.cfg.name === name)?.status));

  const desired = { routes, rules: sortedRules, nexthops: nexthops.sort(compareNexthops) };
  const collisions = blockingCollisions(config, kernel, { ...desired, nexthops: [...desired.nexthops, ...blockedGroup] }, (r) => ruleName(config, policies.status, r));
  for (const c of collisions) {
    warnings.push(`collision: ${c.text} (blocks ${c.uplink ?? 'the balanced default'})`);
    const u = c.uplink === undefined ? undefined : uplinks.find((x) => x.cfg.name === c.uplink);
    if (!u) continue;
    (u.status.collisions ??= []).push(c.text);
    if (u.status.collisions.length === 1) u.status.reason = `${u.status.reason}; blocked by collision: ${c.text}`;
  }
  return { desired, uplinks: uplinks.map((u) => u.status), warnings, policies: policies.status, collisions };
}

/** The tables uplinkd owns: the balance table and every uplink's table. */
export function ownedTables(config: Config): Set<number> {
  return new Set([config.tableBase, ...config.uplinks.map((u) => u.table)]);
}

/** Whether `id` is a nexthop id uplinkd's config may plan (an uplink's table or tableBase). */
function foreignable(config: Config, id: number): boolean {
  return id === config.tableBase || config.uplinks.some((u) => u.table === id);
}

/**
 * Objects of other programs in uplinkd's tables or nexthop ids that hold none of the slots of `routes` (uplinkd's
 * desired routes) or of the nexthops it plans: those are collisions (src/plan/collisions.ts); rules: admin-rules.ts.
 */
/** Foreign routes listed one by one per uplinkd table in the warnings; the rest are counted. */
const COLLISIONS_LISTED = 5;

function collisionWarnings(config: Config, kernel: KernelState, routes: readonly Route[], nexthops: readonly Nexthop[]): string[] {
  const planned = new Set(nexthops.map((n) => n.id));
  const out: string[] = [];
  // A foreign route holding one of uplinkd's slots is a blocking collision (blockingCollisions), reported there.
  // A table another program fills (a BGP feed into an uplink's table) is summed up, not listed route by route.
  const shown = new Map<number, number>();
  for (const { route: r } of foreignRoutesIn(ownedTables(config), kernel, routes, config.protocol).filter((f) => !f.holds)) {
    const n = (shown.get(r.table) ?? 0) + 1;
    shown.set(r.table, n);
    if (n <= COLLISIONS_LISTED) out.push(`collision: foreign route '${formatRoute(r)}' is in uplinkd's table ${r.table}`);
  }
  for (const [table, n] of shown) {
    if (n > COLLISIONS_LISTED) out.push(`collision: ${n - COLLISIONS_LISTED} more foreign routes are in uplinkd's table ${table} (${n} in all)`);
  }
  for (const n of kernel.nexthops.filter((n) => n.protocol !== config.protocol && !planned.has(n.id) && foreignable(config, n.id)).sort(compareNexthops)) {
    out.push(`collision: foreign nexthop '${formatNexthop(n)}' holds id ${n.id}, which uplinkd needs once that uplink is usable`);
  }
  return out;
}
