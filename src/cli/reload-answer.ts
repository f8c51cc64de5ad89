// What `uplinkd reload` says and how it exits, from the daemon's answer (src/daemon/control.ts): the reload was
// accepted, and what the first cycle with the new configuration did (docs/daemon.md, "Reload").
import type { ReloadCycle } from '../daemon/daemon';
import { EXIT } from '../errors';

/** The line to print (stdout), warnings (stderr, without the `warning: ` prefix) and the exit code. */
export interface ReloadReport {
  line: string;
  warnings: string[];
  exit: number;
}

/**
 * `answer`: the result of an accepted `{"cmd":"reload"}` (`{notes, cycle?}`; a daemon before `cycle` existed sends
 * notes only). Exit EXIT.ok (0) when the first cycle applied every change it made, EXIT.failure (1) when it failed
 * as a whole, some changes failed, or no cycle ran; the daemon runs the new configuration either way and retries.
 * (A rejected file never gets here: the daemon answers an error, exit 2.)
 */
export function reloadReport(answer: unknown): ReloadReport {
  const a = (answer ?? {}) as { notes?: unknown; cycle?: Partial<ReloadCycle> };
  const warnings = Array.isArray(a.notes) ? a.notes.map(String) : [];
  const c = a.cycle;
  if (c === undefined) return { line: 'uplinkd: configuration reloaded (the daemon did not say how its next cycle went)', warnings, exit: EXIT.ok };
  const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const changes = (k: number): string => `${k} change${k === 1 ? '' : 's'}`;
  const see = '; the daemon runs the new configuration and retries: see `uplinkd status`';
  if (c.ran !== true) return { line: 'uplinkd: configuration reloaded, but no cycle ran with it (the daemon is stopping)', warnings, exit: EXIT.failure };
  if (typeof c.error === 'string') {
    return { line: `uplinkd: configuration reloaded, but the first cycle with it failed: ${c.error}${see}`, warnings, exit: EXIT.failure };
  }
  const applied = n(c.applied);
  const failed = n(c.failed);
  if (failed > 0) {
    return { line: `uplinkd: configuration reloaded, but ${failed} of ${changes(applied + failed)} failed in the first cycle with it${see}`, warnings, exit: EXIT.failure };
  }
  const deferred = n(c.deferred);
  const collisions = n(c.collisions);
  if (deferred > 0) warnings.push(`${changes(deferred)} held back (conflict limit) or waiting for their link: see \`uplinkd status\``);
  if (collisions > 0) warnings.push(`${collisions} foreign object${collisions === 1 ? '' : 's'} hold${collisions === 1 ? 's' : ''} places of the plan: see \`uplinkd status\``);
  return { line: `uplinkd: configuration reloaded and applied (${changes(applied)})`, warnings, exit: EXIT.ok };
}
