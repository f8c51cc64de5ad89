// One-line, iproute2-like text for kernel objects, for error messages and event summaries.
import type { Address, Link, Nexthop, Route, Rule } from '../model/types';

/**
 * A route in one line, iproute2-like but with numbers for tables and protocols, for logs and error messages (not valid `ip` input; plan/text.ts writes that).
 */
export function describeRoute(r: Route): string {
  const parts: string[] = [r.type === 'unicast' ? '' : r.type, r.dst === '0.0.0.0/0' ? 'default' : r.dst];
  if (r.nhid !== undefined) parts.push(`nhid ${r.nhid}`);
  if (r.gateway) parts.push(`via ${r.gateway}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  for (const h of r.multipath ?? []) parts.push(`nexthop${h.gateway ? ` via ${h.gateway}` : ''} dev ${h.dev} weight ${h.weight}`);
  parts.push(`table ${r.table}`, `proto ${r.protocol}`);
  if (r.scope !== 'universe') parts.push(`scope ${r.scope}`);
  if (r.src) parts.push(`src ${r.src}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  return parts.filter(Boolean).join(' ');
}

/** A rule in one line for logs and error messages: priority first, numbers for tables, protocols and marks. */
export function describeRule(r: Rule): string {
  const parts = [`priority ${r.priority}`, r.invert ? 'not' : '', `from ${r.src ?? 'all'}`];
  if (r.dst) parts.push(`to ${r.dst}`);
  if (r.fwmark !== undefined) parts.push(`fwmark ${r.fwmark}${r.fwmask !== undefined ? `/${r.fwmask}` : ''}`);
  if (r.iif) parts.push(`iif ${r.iif}`);
  if (r.oif) parts.push(`oif ${r.oif}`);
  if (r.tos) parts.push(`tos ${r.tos}`);
  if (r.dscp !== undefined) parts.push(`dscp ${r.dscp}`);
  if (r.ipProto !== undefined) parts.push(`ipproto ${r.ipProto}`);
  if (r.sport) parts.push(`sport ${r.sport.start}-${r.sport.end}`);
  if (r.dport) parts.push(`dport ${r.dport.start}-${r.dport.end}`);
  if (r.l3mdev) parts.push('l3mdev');
  for (const u of r.unmodelled ?? []) parts.push(u);
  parts.push(r.action === 'lookup' ? `lookup ${r.table}` : r.action);
  if (r.suppressPrefixlen !== undefined) parts.push(`suppress_prefixlength ${r.suppressPrefixlen}`);
  parts.push(`proto ${r.protocol}`);
  return parts.filter(Boolean).join(' ');
}

/** A nexthop in one line for logs and error messages (resilient timers in seconds, as `ip nexthop` shows them). */
export function describeNexthop(n: Nexthop): string {
  const parts = [`id ${n.id}`];
  if (n.group) parts.push(`group ${n.group.map((m) => `${m.id},${m.weight}`).join('/')}`);
  if (n.resilient) {
    const r = n.resilient;
    parts.push(`type resilient buckets ${r.buckets} idle_timer ${r.idleTimer} unbalanced_timer ${r.unbalancedTimer}`);
  }
  if (n.blackhole) parts.push('blackhole');
  if (n.gateway) parts.push(`via ${n.gateway}`);
  if (n.dev) parts.push(`dev ${n.dev}`);
  parts.push(`proto ${n.protocol}`);
  return parts.join(' ');
}

/** A link in one line for logs: name, ifindex, kind, administrative state and carrier (IFF_LOWER_UP). */
export function describeLink(l: Link): string {
  return `link ${l.name} (index ${l.index}${l.kind ? `, ${l.kind}` : ''}) ${l.up ? 'up' : 'down'}${l.lowerUp ? ' carrier' : ''}`;
}

/** An IPv4 address in one line for logs: address/prefixlen, device, and IFA_F_DYNAMIC / IFA_F_SECONDARY as words. */
export function describeAddress(a: Address): string {
  return `address ${a.address}/${a.prefixlen} on ${a.dev}${a.dynamic ? ' dynamic' : ''}${a.secondary ? ' secondary' : ''}`;
}
