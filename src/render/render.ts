import { formatPinningChange, type Cycle, type PinningPlan } from '../engine/cycle';
import { describeDefaultPath, type UplinkStatus } from '../plan/planner';
import { formatChange } from '../model/text';
import { policyLines } from './policy-render';

/** Left-aligned columns; the last column is not padded. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

function defaultColumn(u: UplinkStatus): string {
  return u.inDefault ? `yes (weight ${u.weight})` : 'no';
}

/**
 * The uplink table `plan` and `status` print: one row per uplink (address/prefixlen, default path, table, state,
 * whether and with what weight it is in the default, why), columns padded with table().
 */
export function uplinkTable(uplinks: UplinkStatus[]): string {
  const rows = [['UPLINK', 'INTERFACE', 'ADDRESS', 'GATEWAY', 'TABLE', 'STATE', 'DEFAULT', 'WHY']];
  for (const u of uplinks) {
    rows.push([
      u.name,
      u.interface,
      u.address ? `${u.address}/${u.prefixlen}` : '-',
      describeDefaultPath(u),
      String(u.table),
      u.state,
      defaultColumn(u),
      u.reason,
    ]);
  }
  return table(rows);
}

/** A plan with its flow-pinning part (src/nft), as `plan` and `status` print it. */
export type PlannedCycle = Cycle & { pinning: PinningPlan };

function changeLines(cycle: PlannedCycle): string[] {
  const lines = cycle.changes.map((c) => `  ${c.op === 'del' ? '-' : c.op === 'replace' ? '~' : '+'} ${formatChange(c)}`);
  const nft = cycle.pinning.change;
  if (nft) lines.unshift(`  ${nft.op === 'delete' ? '-' : '~'} ${formatPinningChange(nft)}`);
  return lines;
}

/** Routing changes plus the nftables change, if any. */
export function changeCount(cycle: PlannedCycle): number {
  return cycle.changes.length + (cycle.pinning.change ? 1 : 0);
}

function warningLines(cycle: PlannedCycle): string[] {
  const warnings = [...cycle.plan.warnings, ...(cycle.pinning.warning ? [cycle.pinning.warning] : [])];
  return warnings.map((w) => `warning: ${w}`);
}

/**
 * `uplinkd plan` as text: uplink table, policies, warnings, then `N changes:` in apply order (`+` add, `~` replace,
 * `-` delete, as `ip` commands; the nftables change first) or `no changes`.
 */
export function formatPlanText(cycle: PlannedCycle): string {
  const lines = [uplinkTable(cycle.plan.uplinks), '', ...policyLines(cycle.plan.policies, true), ...warningLines(cycle)];
  const n = changeCount(cycle);
  if (n === 0) lines.push('no changes');
  else lines.push(`${n} changes:`, ...changeLines(cycle));
  return lines.join('\n');
}

/**
 * `uplinkd status` without a daemon: uplink table, policies, warnings, pinning status, and how the kernel differs from the plan.
 */
export function formatStatusText(cycle: PlannedCycle): string {
  const lines = [uplinkTable(cycle.plan.uplinks), '', ...policyLines(cycle.plan.policies, false), ...warningLines(cycle), cycle.pinning.status];
  lines.push('daemon: not running (this is the kernel as it is now)');
  const n = changeCount(cycle);
  const collisions = cycle.plan.collisions.map((c) => `  collision: ${c.uplink ?? 'balanced default'}: ${c.text}`);
  if (collisions.length) lines.push('kernel does NOT match the plan: foreign objects hold its slots:', ...collisions);
  const kept = cycle.kept ?? [];
  if (kept.length) lines.push(`kernel does NOT match the plan: ${kept.length} nexthop(s) of uplinkd kept for other programs (see the warnings)`);
  if (n > 0) lines.push(`kernel differs from the plan by ${n} changes (run uplinkd apply):`);
  else if (!collisions.length && !kept.length) lines.push('kernel matches the plan');
  lines.push(...changeLines(cycle));
  return lines.join('\n');
}
