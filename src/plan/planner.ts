// The planner: Config + Facts -> the kernel objects uplinkd wants (docs/design.md, "What uplinkd
// owns"), plus a status line per uplink. Pure and deterministic: every list read from the facts is
// sorted before use, so the order the kernel reported things in does not matter.
import type { Config, UplinkConfig } from '../config/types';
import type { Facts, HealthVerdict } from '../model/facts';
import { contains, networkOf } from '../model/ipv4';
import type { Address, Cidr, DesiredState, Ipv4, KernelState, Link, Nexthop, Route, Rule } from '../model/types';
import {
  compareIps, compareNexthops, comparePrefixes, compareRoutes, compareRules, routeKey,
} from '../reconcile/identity';
import { pinMarks } from '../nft/marks';
import { monitorWarnings } from '../config/monitor-warnings';
import { DEFAULT_DST, formatRoute, formatRule, formatNexthop } from './text';

export type UplinkState = 'ready' | 'waiting' | 'no-interface' | 'link-down' | 'no-address' | 'no-gateway' | 'unhealthy';

export interface UplinkStatus {
  name: string;
  interface: string;
  table: number;
  dhcp: boolean;
  state: UplinkState;
  reason: string;
  address?: Ipv4;
  prefixlen?: number;
  network?: Cidr;
  gateway?: Ipv4;
  gatewaySource?: 'config' | 'route' | 'lease';
  health: HealthVerdict;
  /** Weight in the balance group (after a degraded reduction). */
  weight: number;
  tier: number;
  inDefault: boolean;
  /** Health checks say down, but every uplink does, so this one carries the default anyway (last resort). */
  lastResort?: boolean;
}

export interface Plan {
  desired: DesiredState;
  uplinks: UplinkStatus[];
  warnings: string[];
}

/** Rule priorities relative to config.rulePriority (docs/design.md, rule layout). */
export const RULE_OFFSET = { pinned: 50, from: 100, oif: 110, suppressMain: 200, balance: 300 } as const;
/** uplinkd's rules live in rulePriority .. rulePriority + RULE_BAND - 1. */
export const RULE_BAND = 1000;
export const LOOPBACK_NET = '127.0.0.0/8';
const MAIN_TABLE = 254;

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

const byAddress = (a: Address, b: Address): number => compareIps(a.address, b.address) || a.prefixlen - b.prefixlen;

/** Global IPv4 addresses of an interface, best first: dynamic (DHCP) before static, primary before secondary. */
function globalAddresses(kernel: KernelState, dev: string): Address[] {
  return kernel.addresses
    .filter((a) => a.dev === dev && a.scope === 'universe')
    .sort((a, b) => Number(b.dynamic) - Number(a.dynamic) || Number(a.secondary) - Number(b.secondary) || byAddress(a, b));
}

interface GatewayCandidate { gateway: Ipv4; metric: number; table: number }

/**
 * Default routes' gateways per interface, in any table, not made by uplinkd (also inside multipath
 * routes and nexthop objects), best first. One pass over the kernel's routes for all uplinks.
 */
function defaultRouteGateways(kernel: KernelState, protocol: number): Map<string, GatewayCandidate[]> {
  const nexthops = new Map(kernel.nexthops.map((n) => [n.id, n]));
  const byDev = new Map<string, GatewayCandidate[]>();
  for (const r of kernel.routes) {
    if (r.protocol === protocol || r.dst !== DEFAULT_DST || r.type !== 'unicast') continue;
    const metric = r.metric ?? 0;
    const add = (gateway: Ipv4 | undefined, dev: string | undefined): void => {
      if (gateway === undefined || dev === undefined) return;
      const list = byDev.get(dev) ?? [];
      list.push({ gateway, metric, table: r.table });
      byDev.set(dev, list);
    };
    if (r.nhid !== undefined) {
      const nh = nexthops.get(r.nhid);
      if (nh && nh.protocol !== protocol) {
        const members = nh.group ? nh.group.map((m) => nexthops.get(m.id)) : [nh];
        for (const m of members) add(m?.gateway, m?.dev);
      }
    } else if (r.multipath) {
      for (const hop of r.multipath) add(hop.gateway, hop.dev);
    } else {
      add(r.gateway, r.dev);
    }
  }
  // Lowest metric wins; then main before other tables, then the lowest address, for determinism.
  const tableRank = (t: number): number => (t === MAIN_TABLE ? -1 : t);
  for (const list of byDev.values()) {
    list.sort((a, b) => a.metric - b.metric || tableRank(a.table) - tableRank(b.table) || compareIps(a.gateway, b.gateway));
  }
  return byDev;
}

function linkProblem(link: Link | undefined): { state: UplinkState; reason: string } | undefined {
  if (!link) return { state: 'no-interface', reason: 'interface does not exist' };
  if (!link.up) return { state: 'link-down', reason: 'interface is administratively down' };
  if (!link.lowerUp) return { state: 'link-down', reason: 'no carrier' };
  return undefined;
}

function resolveUplink(facts: Facts, gateways: Map<string, GatewayCandidate[]>, cfg: UplinkConfig, warnings: string[]): Uplink {
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

  const problem = linkProblem(link);
  if (problem?.state === 'no-interface') return done(problem.state, problem.reason);

  // Address.
  if (cfg.dhcp) {
    const best = globalAddresses(kernel, cfg.interface)[0];
    if (!best) return done(problem?.state ?? 'waiting', problem?.reason ?? 'waiting for a DHCP lease');
    status.address = best.address;
    status.prefixlen = best.prefixlen;
  } else if (cfg.address) {
    const present = kernel.addresses.some((a) => a.dev === cfg.interface && a.address === cfg.address!.ip);
    if (!present) return done(problem?.state ?? 'no-address', `${cfg.address.ip} is not on ${cfg.interface}`);
    status.address = cfg.address.ip;
    status.prefixlen = cfg.address.prefixlen;
  } else {
    return done('no-address', 'no address configured');
  }
  const network = networkOf(status.address, status.prefixlen);
  status.network = network;

  // Gateway.
  const onNetwork = (g: Ipv4): boolean => contains(network, g) && g !== status.address;
  const routeCandidates = gateways.get(cfg.interface) ?? [];
  const fromRoute = routeCandidates.find((c) => onNetwork(c.gateway));
  if (cfg.gateway !== undefined) {
    status.gateway = cfg.gateway;
    status.gatewaySource = 'config';
  } else if (fromRoute) {
    status.gateway = fromRoute.gateway;
    status.gatewaySource = 'route';
  } else if (cfg.dhcp) {
    const lease = facts.leases
      .filter((l) => l.interface === cfg.interface && l.address === status.address && l.gateway !== undefined && onNetwork(l.gateway))
      .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))[0];
    if (lease) {
      status.gateway = lease.gateway;
      status.gatewaySource = 'lease';
      warnings.push(`uplink ${cfg.name}: gateway ${lease.gateway} taken from the ${lease.client} lease ${lease.file} (no default route on ${cfg.interface})`);
    }
  }

  if (problem) return done(problem.state, problem.reason);
  if (status.gateway === undefined) {
    const offNet = routeCandidates.map((c) => c.gateway).filter((g) => !onNetwork(g));
    return done('no-gateway', offNet.length > 0
      ? `default route gateway ${offNet[0]} is outside ${network}`
      : `no default route on ${cfg.interface}${cfg.dhcp ? ' and no matching lease' : ''}`);
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

export function plan(config: Config, facts: Facts): Plan {
  const warnings: string[] = [];
  const { kernel } = facts;
  const proto = config.protocol;
  const gateways = defaultRouteGateways(kernel, config.protocol);
  const uplinks = config.uplinks.map((cfg) => resolveUplink(facts, gateways, cfg, warnings));
  lastResort(uplinks, warnings);

  // LAN networks, from the addresses on the LAN interfaces.
  const lanRoutes: { net: Cidr; dev: string }[] = [];
  for (const dev of [...config.lan].sort()) {
    const link = kernel.links.find((l) => l.name === dev);
    if (!link) {
      warnings.push(`LAN interface ${dev} does not exist`);
      continue;
    }
    if (!routable(link)) continue;
    for (const a of globalAddresses(kernel, dev).sort(byAddress)) lanRoutes.push({ net: networkOf(a.address, a.prefixlen), dev });
  }

  const routes = new Map<string, Route>();
  // First route for a key wins (the kernel holds one route per table+dst+metric).
  const addRoute = (r: Route): void => {
    const key = routeKey(r);
    if (!routes.has(key)) routes.set(key, r);
  };
  const rules: Rule[] = [];
  const rule = (offset: number, r: Omit<Rule, 'priority' | 'protocol' | 'action'>): void => {
    rules.push({ priority: config.rulePriority + offset, action: 'lookup', protocol: proto, ...r });
  };

  for (const u of uplinks) {
    const { cfg, status } = u;
    const table = cfg.table;
    if (status.address !== undefined && status.network !== undefined && routable(u.link)) {
      addRoute({ table, dst: status.network, type: 'unicast', protocol: proto, scope: 'link', dev: cfg.interface, src: status.address });
      if (status.gateway !== undefined) {
        addRoute({ table, dst: DEFAULT_DST, type: 'unicast', protocol: proto, scope: 'universe', gateway: status.gateway, dev: cfg.interface });
      }
    }
    for (const lan of lanRoutes) addRoute({ table, dst: lan.net, type: 'unicast', protocol: proto, scope: 'link', dev: lan.dev });
    for (const other of uplinks) {
      if (other === u || other.status.network === undefined || !routable(other.link)) continue;
      addRoute({ table, dst: other.status.network, type: 'unicast', protocol: proto, scope: 'link', dev: other.cfg.interface });
    }
    addRoute({ table, dst: LOOPBACK_NET, type: 'unicast', protocol: proto, scope: 'link', dev: 'lo' });

    if (status.address !== undefined) rule(RULE_OFFSET.from, { src: `${status.address}/32`, table });
    rule(RULE_OFFSET.oif, { oif: cfg.interface, table });
  }
  // Pinned connections (their packets carry the uplink's mark, src/nft) keep their uplink
  // whatever the balance does; depends on the config only, like the oif rules.
  for (const m of pinMarks(config)) rule(RULE_OFFSET.pinned, { fwmark: m.mark, fwmask: config.pinning!.markMask, table: m.table });
  rule(RULE_OFFSET.suppressMain, { table: MAIN_TABLE, suppressPrefixlen: 0 });
  rule(RULE_OFFSET.balance, { table: config.tableBase });

  // The balanced default: a nexthop per usable uplink, a resilient group of the chosen ones.
  const nexthops: Nexthop[] = [];
  for (const u of uplinks) {
    if (u.usable) nexthops.push({ id: u.cfg.table, protocol: proto, gateway: u.status.gateway, dev: u.cfg.interface });
  }
  const chosen = chooseDefault(config, uplinks, warnings);
  for (const u of chosen) u.status.inDefault = true;
  if (chosen.length > 0) {
    nexthops.push({
      id: config.tableBase,
      protocol: proto,
      group: chosen.map((u) => ({ id: u.cfg.table, weight: clampWeight(u.status.weight) })).sort((a, b) => a.id - b.id),
      resilient: { ...config.resilient },
    });
    addRoute({ table: config.tableBase, dst: DEFAULT_DST, type: 'unicast', protocol: proto, scope: 'universe', nhid: config.tableBase });
  }

  warnings.push(...collisionWarnings(config, kernel));
  warnings.push(...monitorWarnings(config, (name) => uplinks.find((u) => u.cfg.name === name)?.status));
  for (const [net, names] of sharedNetworks(uplinks)) warnings.push(`uplinks ${names.join(', ')} share the network ${net}: each one's table routes it through its own interface only`);

  return {
    desired: {
      routes: [...routes.values()].sort(compareRoutes),
      rules: rules.sort(compareRules),
      nexthops: nexthops.sort(compareNexthops),
    },
    uplinks: uplinks.map((u) => u.status),
    warnings,
  };
}

/** The tables uplinkd owns: the balance table and every uplink's table. */
export function ownedTables(config: Config): Set<number> {
  return new Set([config.tableBase, ...config.uplinks.map((u) => u.table)]);
}

export function inRuleBand(config: Config, priority: number): boolean {
  return priority >= config.rulePriority && priority < config.rulePriority + RULE_BAND;
}

/** Objects of other programs inside uplinkd's priority band, tables or nexthop ids. */
function collisionWarnings(config: Config, kernel: KernelState): string[] {
  const tables = ownedTables(config);
  const ids = new Set([config.tableBase, ...config.uplinks.map((u) => u.table)]);
  const out: string[] = [];
  const band = `${config.rulePriority}..${config.rulePriority + RULE_BAND - 1}`;
  for (const r of kernel.rules.filter((r) => r.protocol !== config.protocol && inRuleBand(config, r.priority)).sort(compareRules)) {
    out.push(`collision: foreign rule '${formatRule(r)}' is inside uplinkd's priority band ${band}`);
  }
  for (const r of kernel.routes.filter((r) => r.protocol !== config.protocol && tables.has(r.table)).sort(compareRoutes)) {
    out.push(`collision: foreign route '${formatRoute(r)}' is in uplinkd's table ${r.table}`);
  }
  for (const n of kernel.nexthops.filter((n) => n.protocol !== config.protocol && ids.has(n.id)).sort(compareNexthops)) {
    out.push(`collision: foreign nexthop '${formatNexthop(n)}' uses an id uplinkd needs`);
  }
  return out;
}

function sharedNetworks(uplinks: Uplink[]): [Cidr, string[]][] {
  const byNet = new Map<Cidr, string[]>();
  for (const u of uplinks) {
    if (u.status.network === undefined) continue;
    byNet.set(u.status.network, [...(byNet.get(u.status.network) ?? []), u.cfg.name]);
  }
  return [...byNet.entries()].filter(([, names]) => names.length > 1).sort(([a], [b]) => comparePrefixes(a, b));
}
