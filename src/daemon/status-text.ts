import { policyTextLines } from './policy-status';
import { table, uplinkTable } from '../render/render';
import type { HealthStats } from '../health/state';
import type { DaemonStatus } from './daemon';

function ms(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(1)} ms`;
}

/** Human time in state: 42s, 5m12s, 3h04m. */
export function formatDuration(msTotal: number): string {
  const s = Math.max(0, Math.floor(msTotal / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function healthTable(health: Record<string, HealthStats>, now: number): string {
  const rows = [['HEALTH', 'STATE', 'RTT', 'JITTER', 'LOSS', 'FOR', 'WHY (while not up)']];
  for (const [name, h] of Object.entries(health).sort(([a], [b]) => a.localeCompare(b))) {
    rows.push([name, h.state, ms(h.rttMs), ms(h.jitterMs), h.lossPct === null ? '-' : `${h.lossPct.toFixed(0)}%`, formatDuration(now - h.since), h.state === 'up' ? '-' : h.reason || (h.lastError ?? '-')]);
  }
  return table(rows);
}

/** `uplinkd status` while the daemon runs: its own view, facts, conflicts and last events with causes. */
export function formatDaemonStatus(s: DaemonStatus, now = Date.now()): string {
  const lines = [uplinkTable(s.uplinks), '', ...policyTextLines(s.policies)];
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  lines.push(`daemon: running (pid ${s.pid}, since ${s.startedAt}, config ${s.configFile}, ${s.cycles} cycles)`);
  if (s.lastCycle) {
    const c = s.lastCycle;
    const outcome = c.error ? `failed: ${c.error}` : `${c.applied} applied, ${c.failed} failed, ${c.deferred} held back`;
    lines.push(`last cycle: ${c.at}: ${outcome} (cause: ${c.causes.join('; ')})`);
  }
  if (s.kept?.length) lines.push('kernel does NOT match the plan: nexthops kept for other programs:', ...s.kept.map((k) => `  ${k}`));
  if (s.collisions?.length) lines.push(`kernel does NOT match the plan: foreign objects hold its slots:`, ...s.collisions.map((c) => `  collision: ${c}`));
  else if (!s.kept?.length) lines.push(s.inSync ? 'kernel matches the plan' : 'kernel does NOT fully match the plan (see events)');
  const leases = s.facts.leases.map((l) => `  ${l.interface}: ${l.address ?? '-'} via ${l.gateway ?? '-'} (${l.client}, ${l.file})`);
  if (leases.length) lines.push('', 'leases:', ...leases);
  if (Object.keys(s.health).length) lines.push('', healthTable(s.health, now));
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
