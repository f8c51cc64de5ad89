// What an admin's own `ip rule` does next to uplinkd's (docs/policies.md, "Your own rules"): a message per
// foreign rule, at any priority, saying what it does to port-forward replies and which of uplinkd's
// rules it precedes or shadows. Pure; replaces the bare "collision" of a foreign rule in the band.
import type { Config } from '../config/types';
import { contains, overlaps, parseCidr } from '../model/ipv4';
import type { Rule } from '../model/types';
import { ruleKey, sortRules } from '../model/identity';
import type { PolicyStatus } from './policies';
import { formatRule } from '../model/text';

/** The kernel's own rules (`ip rule` after boot): not an admin's. */
function isKernelDefault(r: Rule): boolean {
  return r.action === 'lookup' && r.protocol <= 2 && r.src === undefined && r.dst === undefined && r.iif === undefined
    && r.oif === undefined && r.fwmark === undefined && ((r.priority === 0 && r.table === 255)
      || (r.priority === 32766 && r.table === 254) || (r.priority === 32767 && r.table === 253));
}

const ANY = '0.0.0.0/0';

/** Whether prefix `outer` holds all of `inner` (both "a.b.c.d/len"; absent is everything). */
function prefixCovers(outer: string | undefined, inner: string | undefined): boolean {
  if (outer === undefined || outer === ANY) return true;
  if (inner === undefined || inner === ANY) return false;
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  return o.prefixlen <= i.prefixlen && contains(outer, i.ip);
}

/** Whether prefixes `a` and `b` share no address (absent is everything). */
function prefixDisjoint(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && a !== ANY && b !== ANY && !overlaps(a, b);
}

/**
 * Whether no packet matches both selectors of `a` and `b` (inverts ignored): a field both set to values that
 * cannot both hold. fwmark: (mark & mask) compared under both masks (the kernel matches `(skb->mark ^ mark) & mask`).
 */
function selectorsDisjoint(a: Rule, b: Rule): boolean {
  const differ = <T>(x: T | undefined, y: T | undefined): boolean => x !== undefined && y !== undefined && x !== y;
  const apart = (x: Rule['dport'], y: Rule['dport']): boolean => x !== undefined && y !== undefined && (x.end < y.start || y.end < x.start);
  const marksApart = (): boolean => {
    if (a.fwmark === undefined || b.fwmark === undefined) return false;
    const m = (a.fwmask ?? 0xffffffff) & (b.fwmask ?? 0xffffffff);
    return ((a.fwmark & m) >>> 0) !== ((b.fwmark & m) >>> 0);
  };
  return prefixDisjoint(a.src, b.src) || prefixDisjoint(a.dst, b.dst) || differ(a.iif, b.iif) || differ(a.oif, b.oif)
    || differ(a.ipProto, b.ipProto) || apart(a.sport, b.sport) || apart(a.dport, b.dport) || differ(a.dscp, b.dscp)
    || differ(a.tos, b.tos) || marksApart();
}

/** Whether the selectors of `a` hold every packet those of `b` hold (inverts ignored). */
function selectorsCover(a: Rule, b: Rule): boolean {
  const same = <T>(x: T | undefined, y: T | undefined): boolean => x === undefined || x === y;
  const range = (x: Rule['dport'], y: Rule['dport']): boolean => x === undefined || (y !== undefined && x.start <= y.start && y.end <= x.end);
  return prefixCovers(a.src, b.src) && prefixCovers(a.dst, b.dst) && same(a.iif, b.iif) && same(a.oif, b.oif)
    && same(a.ipProto, b.ipProto) && range(a.sport, b.sport) && range(a.dport, b.dport) && same(a.dscp, b.dscp) && same(a.tos, b.tos)
    && marksCover(a, b);
}

/** Whether every mark `b` matches also matches `a` ((mark ^ rule mark) & mask == 0; a mark without a mask compares all bits). */
function marksCover(a: Rule, b: Rule): boolean {
  if (a.fwmark === undefined) return true;
  const aMask = a.fwmask ?? 0xffffffff;
  if (b.fwmark === undefined) return aMask === 0;
  const bMask = b.fwmask ?? 0xffffffff;
  return ((aMask & ~bMask) >>> 0) === 0 && (((a.fwmark ^ b.fwmark) & aMask) >>> 0) === 0;
}

/**
 * How foreign rule `a`'s selectors meet ours (`b`, never inverted): 'all' when `a` matches every packet `b` matches,
 * 'none' when it matches none of them, 'some' when some, 'unknown' when `a` carries a selector uplinkd does not model
 * (uidrange, tun_id, l3mdev, suppress_ifgroup, ...). A `not` rule (FIB_RULE_INVERT, net/core/fib_rules.c
 * fib_rule_match) matches exactly the packets its selectors do not: 'all' and 'none' swap.
 */
export type Overlap = 'all' | 'some' | 'none' | 'unknown';

/** See Overlap; pure, judged from the selectors only (not from which routes the looked-up table holds). */
export function overlap(a: Rule, b: Rule): Overlap {
  if (a.unmodelled?.length || a.l3mdev) return 'unknown';
  const plain: Overlap = selectorsCover(a, b) ? 'all' : selectorsDisjoint(a, b) ? 'none' : 'some';
  if (!a.invert) return plain;
  return plain === 'all' ? 'none' : plain === 'none' ? 'all' : 'some';
}

/**
 * Whether foreign rule `a` takes every packet ours (`b`) matches (so `b` never sees them when `a` comes first): its
 * selectors hold all of `b`'s (overlap 'all') and it does not let some through again (suppress_prefixlength).
 */
export function shadows(a: Rule, b: Rule): boolean {
  return a.suppressPrefixlen === undefined && overlap(a, b) === 'all';
}

/**
 * Whether the kernel consults rule `a` before rule `b`, both as in `observed` (a rule dump, in the kernel's order):
 * a lower priority first; at one priority, the one inserted first (net/core/fib_rules.c adds after the last rule of
 * the same priority), i.e. the one earlier in the dump. A rule not in `observed` yet comes after those there when added.
 */
export function consultedBefore(observed: readonly Rule[], a: Rule, b: Rule): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  const at = (r: Rule): number => {
    const key = ruleKey(r);
    return observed.findIndex((o) => o.protocol === r.protocol && ruleKey(o) === key);
  };
  const ia = at(a);
  const ib = at(b);
  return ia >= 0 && (ib < 0 || ia < ib);
}

/** A short name for one of uplinkd's rules, from its shape (and the policy it belongs to). */
export function ruleName(config: Config, policies: readonly PolicyStatus[], r: Rule): string {
  const policy = policies.find((p) => p.rules.includes(r));
  if (policy) return `policy ${policy.name}`;
  if (r.fwmark !== undefined) return `pinning (fwmark 0x${r.fwmark.toString(16)})`;
  if (r.oif !== undefined) return `oif ${r.oif}`;
  if (r.suppressPrefixlen !== undefined) return 'the main table (suppress_prefixlength)';
  if (r.action === 'lookup' && r.table === config.tableBase) return 'the balanced default';
  if (r.src !== undefined) return `split access (from ${r.src})`;
  return `rule ${r.priority}`;
}

type RuleNamer = (ours: Rule) => string;

/** Why uplinkd cannot tell which packets rule `r` matches, or undefined when it can. */
function unmodelledReason(r: Rule): string | undefined {
  const names = [...(r.l3mdev ? ['l3mdev'] : []), ...(r.unmodelled ?? []).map((u) => u.split('=')[0]!)];
  return names.length > 0 ? `its selectors ${names.join(', ')} are not modelled by uplinkd` : undefined;
}

/** What rule `r` does to the packets it matches (and, for suppress_prefixlength, to which of them). */
function effectOf(r: Rule): string {
  const fate = r.action === 'lookup' ? `leave by table ${r.table}` : r.action === 'other' ? 'go where its action (goto, nop) sends them' : `get ${r.action}`;
  return r.suppressPrefixlen === undefined ? fate
    : `${fate} when that table's route for them is longer than /${r.suppressPrefixlen} (suppress_prefixlength ${r.suppressPrefixlen} lets the others through)`;
}

/**
 * One message per admin rule (any priority, not uplinkd's protocol, not the kernel's defaults):
 * "admin rule '<rule>': <what it does to port-forward replies>; <which of ours it shadows or precedes>".
 * Never empty after the colon. A `not` rule (FIB_RULE_INVERT) is judged on the packets its selectors do not match; a
 * rule with selectors uplinkd does not model counts as possibly matching everything and the message says so.
 * `ours` are uplinkd's desired rules, `name` names one of them (ruleName).
 */
export function adminRuleMessages(config: Config, observed: Rule[], ours: Rule[], name: RuleNamer): string[] {
  const admins = observed.filter((x) => x.protocol !== config.protocol && !isKernelDefault(x));
  if (admins.length === 0) return []; // the usual case: nothing to sort ours for
  const mine = sortRules(ours);
  const out: string[] = [];
  const pinned = mine.filter((r) => r.fwmark !== undefined);
  const splitAccess = mine.filter((r) => r.src !== undefined && r.src.endsWith('/32') && r.priority < config.rulePriority + 200);
  for (const r of sortRules(admins)) {
    // The kernel's real order: at one priority the rule inserted first (earlier in the dump) is consulted first.
    const after = mine.filter((o) => consultedBefore(observed, r, o));
    const shadowed = after.filter((o) => shadows(r, o));
    const unknown = unmodelledReason(r);
    const what: string[] = [];
    if (r.invert) what.push('a `not` rule: it matches every packet its selectors do not');
    const replies = pinned.concat(splitAccess).filter((o) => consultedBefore(observed, r, o));
    const meets = replies.map((o) => overlap(r, o));
    if (replies.length === 0) {
      what.push('port-forward replies and established connections are routed by uplinkd\'s earlier rules first, so it does not change them');
    } else if (meets.some((m) => m === 'all' || m === 'some')) {
      what.push(`comes before flow pinning and split access, so port-forward replies and established connections it matches ${effectOf(r)}, `
        + 'not through the uplink they came in on');
    } else if (unknown !== undefined) {
      what.push(`comes before flow pinning and split access and ${unknown}, so it may match port-forward replies and established `
        + `connections: those it matches ${effectOf(r)}, not through the uplink they came in on`);
    } else {
      what.push('comes before flow pinning and split access but matches none of their packets, so it does not change port-forward replies');
    }
    if (shadowed.length > 0) {
      const where = r.action === 'lookup' ? ` for destinations table ${r.table} has a route to` : '';
      what.push(`shadows ${[...new Set(shadowed.map(name))].join(', ')}: they never see the packets it matches${where}`);
    } else if (after.length > 0) {
      what.push(`precedes ${name(after[0]!)} (priority ${after[0]!.priority}) and later uplinkd rules for the packets it matches`);
    } else {
      what.push('comes after all of uplinkd\'s rules: it only sees traffic no uplink took');
    }
    out.push(`admin rule '${formatRule(r)}': ${what.join('; ')}`);
  }
  return out;
}
