// Keeping the log and status readable when a cycle is large (3000 LAN routes copied into 4 uplink
// tables is 12,000 changes): cause lists are capped, and a large cycle logs one summary line per
// kind of change plus its first changes at info level; every change stays at debug level.
import type { Change } from '../model/types';

/** Causes shown in a log line or status ("and N more" after them). */
export const CAUSES_SHOWN = 3;
/** A single cause longer than this many characters is cut with "…". */
export const CAUSE_CHARS = 160;
/** A cycle with more changes than this logs a summary; only its first CHANGES_SHOWN changes at info level. */
export const CHANGES_DETAIL_MAX = 20;
export const CHANGES_SHOWN = 10;

/** The first `shown` causes, each cut to CAUSE_CHARS, then "and N more" when there were more. */
export function capCauses(causes: readonly string[], shown = CAUSES_SHOWN): string[] {
  const cut = causes.slice(0, shown).map((c) => (c.length > CAUSE_CHARS ? `${c.slice(0, CAUSE_CHARS - 1)}…` : c));
  return causes.length > shown ? [...cut, `and ${causes.length - shown} more`] : cut;
}

/** capCauses joined with "; " for a log field. */
export function joinCauses(causes: readonly string[]): string {
  return capCauses(causes).join('; ');
}

/**
 * Counts of the changes per operation and kind, most first (ties by name), e.g. "add route: 2990, replace nexthop: 1".
 * `extra` adds kinds that are not netlink changes (the nftables table).
 */
export function changeSummary(changes: readonly Pick<Change, 'op' | 'kind'>[], extra: readonly string[] = []): string {
  const counts = new Map<string, number>();
  for (const name of [...changes.map((c) => `${c.op} ${c.kind}`), ...extra]) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k}: ${n}`).join(', ');
}
