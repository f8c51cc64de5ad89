// The policy compiler (docs/policies.md): config policies + which uplinks are usable now -> `ip rule`s.
// Pure. Rules, not packet marks: `ip rule` matches source, destination, input interface, protocol,
// port ranges and DSCP (FRA_IP_PROTO, FRA_SPORT_RANGE, FRA_DPORT_RANGE, FRA_DSCP; linux/fib_rules.h).
//
// Policy i (0-based, file order) lives at priority rulePriority + POLICY_FIRST + POLICY_STEP * i:
//   P     `<selectors> lookup <table of the first usable uplink in use>`
//   P + 1 `<selectors> unreachable`            (strict policies only, always present)
//   P + 2 free for the admin
// That is after the fwmark (+50, pinned connections keep their uplink), `from <uplink address>` (+100,
// split-access replies) and oif (+110) rules, and after `lookup main suppress_prefixlength 0` (+200, so
// the main table's specific routes, LAN and VPNs, still win), before the balanced default (+300).
import type { Config, PolicyConfig } from '../config/types';
import type { Rule } from '../model/types';

/** Offset of policy 0's priority from config.rulePriority. */
export const POLICY_FIRST = 210;
/** Priorities per policy: lookup, the strict unreachable, one free for the admin. */
export const POLICY_STEP = 3;

/** What the compiler needs to know of an uplink now. */
export interface PolicyUplink {
  name: string;
  table: number;
  /** Link up with carrier, address, gateway, health not down (the planner's verdict). */
  usable: boolean;
  /** Why not, when not usable (the planner's status reason). */
  reason: string;
}

export interface PolicyStatus {
  name: string;
  /** The lookup rule's priority. */
  priority: number;
  /** The uplink the policy's new connections use now; absent when unreachable or balanced. */
  uplink?: string;
  /** uplink: through `uplink`; unreachable: strict with none of `use` usable; balanced: none usable, not strict. */
  action: 'uplink' | 'unreachable' | 'balanced';
  /** Why, in a few words. */
  reason: string;
  /** The rules of this policy, in priority order. */
  rules: Rule[];
}

/** The priority of policy `index`'s lookup rule. */
export function policyPriority(config: Pick<Config, 'rulePriority'>, index: number): number {
  return config.rulePriority + POLICY_FIRST + POLICY_STEP * index;
}

type Selector = Omit<Rule, 'priority' | 'action' | 'table' | 'protocol'>;

/** Every combination of the policy's from, to, port and source_port lists, as rule selectors. */
export function selectors(p: PolicyConfig): Selector[] {
  const or = <T>(list: T[]): (T | undefined)[] => (list.length > 0 ? list : [undefined]);
  const out: Selector[] = [];
  for (const src of or(p.from)) for (const dst of or(p.to)) for (const dport of or(p.dport)) for (const sport of or(p.sport)) {
    const s: Selector = {};
    if (src !== undefined && src !== '0.0.0.0/0') s.src = src;
    if (dst !== undefined && dst !== '0.0.0.0/0') s.dst = dst;
    if (p.iif !== undefined) s.iif = p.iif;
    if (p.ipProto !== undefined) s.ipProto = p.ipProto;
    if (sport !== undefined) s.sport = { ...sport };
    if (dport !== undefined) s.dport = { ...dport };
    if (p.dscp !== undefined) s.dscp = p.dscp;
    out.push(s);
  }
  return out;
}

/**
 * Compiles config.policies against the uplinks' current usability. Returns the rules (protocol
 * config.protocol) and one status per policy. Deterministic: depends on the config order and the
 * usability of each uplink only.
 */
export function compilePolicies(config: Config, uplinks: PolicyUplink[]): { rules: Rule[]; status: PolicyStatus[] } {
  const byName = new Map(uplinks.map((u) => [u.name, u]));
  const rules: Rule[] = [];
  const status: PolicyStatus[] = [];
  (config.policies ?? []).forEach((p, i) => {
    const priority = policyPriority(config, i);
    const mine: Rule[] = [];
    const candidates = p.use.map((n) => byName.get(n)).filter((u): u is PolicyUplink => u !== undefined);
    const chosen = candidates.find((u) => u.usable);
    const passedOver = chosen ? candidates.slice(0, candidates.indexOf(chosen)) : candidates;
    const why = passedOver.map((u) => `${u.name}: ${u.reason}`).join('; ');
    for (const s of selectors(p)) {
      if (chosen) mine.push({ priority, action: 'lookup', table: chosen.table, protocol: config.protocol, ...s });
      // Always there for a strict policy: when the uplink's table has no route (link just lost), the
      // lookup falls through, and this stops it before the balanced default could take it elsewhere.
      if (p.strict) mine.push({ priority: priority + 1, action: 'unreachable', table: 0, protocol: config.protocol, ...s });
    }
    let st: Omit<PolicyStatus, 'rules'>;
    if (chosen) {
      const order = candidates.indexOf(chosen) === 0 ? 'first in use' : `next in use (${why})`;
      st = { name: p.name, priority, uplink: chosen.name, action: 'uplink', reason: `${chosen.name} is usable, ${order}` };
    } else if (p.strict) {
      st = { name: p.name, priority, action: 'unreachable', reason: `strict and no uplink in use is usable (${why})` };
    } else {
      st = { name: p.name, priority, action: 'balanced', reason: `no uplink in use is usable (${why}): balanced like other traffic` };
    }
    rules.push(...mine);
    status.push({ ...st, rules: mine });
  });
  return { rules, status };
}
