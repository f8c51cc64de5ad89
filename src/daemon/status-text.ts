import { uplinkTable } from '../cli/render';
import type { DaemonStatus } from './daemon';

/** `uplinkd status` while the daemon runs: its own view, facts, conflicts and last events with causes. */
export function formatDaemonStatus(s: DaemonStatus): string {
  const lines = [uplinkTable(s.uplinks), ''];
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  lines.push(`daemon: running (pid ${s.pid}, since ${s.startedAt}, config ${s.configFile}, ${s.cycles} cycles)`);
  if (s.lastCycle) {
    const c = s.lastCycle;
    const outcome = c.error ? `failed: ${c.error}` : `${c.applied} applied, ${c.failed} failed, ${c.deferred} held back`;
    lines.push(`last cycle: ${c.at}: ${outcome} (cause: ${c.causes.join('; ')})`);
  }
  lines.push(s.inSync ? 'kernel matches the plan' : 'kernel does NOT fully match the plan (see events)');
  const leases = s.facts.leases.map((l) => `  ${l.interface}: ${l.address ?? '-'} via ${l.gateway ?? '-'} (${l.client}, ${l.file})`);
  if (leases.length) lines.push('', 'leases:', ...leases);
  const health = Object.entries(s.facts.health).map(([name, v]) => `  ${name}: ${v}`);
  if (health.length) lines.push('', 'health:', ...health);
  if (s.conflicts.length) {
    lines.push('', 'restored recently (another program changed or removed what uplinkd owns):');
    for (const c of s.conflicts) {
      lines.push(`  ${c.object}: restored ${c.restorations}x recently${c.retryAt ? `, held back until ${c.retryAt}` : ''}`);
    }
  }
  if (s.events.length) {
    lines.push('', 'recent events:');
    for (const e of s.events.slice(-20)) lines.push(`  ${e.at} ${e.event}: ${e.text}${e.cause ? ` (cause: ${e.cause})` : ''}`);
  }
  return lines.join('\n');
}
