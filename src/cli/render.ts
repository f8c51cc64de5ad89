import type { Cycle } from '../engine/cycle';
import type { UplinkStatus } from '../plan/planner';
import { formatChange } from '../plan/text';

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

export function uplinkTable(uplinks: UplinkStatus[]): string {
  const rows = [['UPLINK', 'INTERFACE', 'ADDRESS', 'GATEWAY', 'TABLE', 'STATE', 'DEFAULT', 'WHY']];
  for (const u of uplinks) {
    rows.push([
      u.name,
      u.interface,
      u.address ? `${u.address}/${u.prefixlen}` : '-',
      u.gateway ? `${u.gateway}${u.gatewaySource && u.gatewaySource !== 'config' ? ` (${u.gatewaySource})` : ''}` : '-',
      String(u.table),
      u.state,
      defaultColumn(u),
      u.reason,
    ]);
  }
  return table(rows);
}

function changeLines(cycle: Cycle): string[] {
  return cycle.changes.map((c) => `  ${c.op === 'del' ? '-' : c.op === 'replace' ? '~' : '+'} ${formatChange(c)}`);
}

export function formatPlanText(cycle: Cycle): string {
  const lines = [uplinkTable(cycle.plan.uplinks), ''];
  for (const w of cycle.plan.warnings) lines.push(`warning: ${w}`);
  if (cycle.changes.length === 0) lines.push('no changes');
  else lines.push(`${cycle.changes.length} changes:`, ...changeLines(cycle));
  return lines.join('\n');
}

export function formatStatusText(cycle: Cycle): string {
  const lines = [uplinkTable(cycle.plan.uplinks), ''];
  for (const w of cycle.plan.warnings) lines.push(`warning: ${w}`);
  lines.push('daemon: not running (this is the kernel as it is now)');
  lines.push(cycle.changes.length === 0 ? 'kernel matches the plan' : `kernel differs from the plan by ${cycle.changes.length} changes (run uplinkd apply):`);
  lines.push(...changeLines(cycle));
  return lines.join('\n');
}
