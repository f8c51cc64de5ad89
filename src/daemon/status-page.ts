// The read-only status page (GET /): one self-contained HTML document, no scripts, no external
// assets, refreshed by a meta tag. Every value from the status is HTML-escaped. Pure.
import type { HealthStats } from '../health/state';
import { describeDefaultPath, type UplinkStatus } from '../plan/planner';
import { renderHistory } from './history-chart';
import type { ServedStatus } from './http';
import { formatDuration } from './status-text';

/** The page's `<meta http-equiv="refresh">` period, in seconds. */
export const REFRESH_SECONDS = 5;
const EVENTS_SHOWN = 20;

/** `text` safe inside HTML elements and quoted attributes: & < > " ' as character references. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#176f2c;font-weight:600}.bad{color:#b00020;font-weight:600}.warn{color:#9a6700;font-weight:600}
small{color:#666}code{font-size:13px}`;

/** A row of cells, each given as already-escaped HTML. */
function row(cells: string[], tag: 'td' | 'th' = 'td'): string {
  return `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
}

/** Escaped text in a span whose class says good, bad or in between. */
function tone(text: string, kind: 'ok' | 'bad' | 'warn'): string {
  return `<span class="${kind}">${escapeHtml(text)}</span>`;
}

const ms = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : `${value.toFixed(1)} ms`);

function uplinkRow(u: UplinkStatus, h: HealthStats | undefined, now: number): string {
  const gateway = describeDefaultPath(u);
  const health = h ? tone(h.state, h.state === 'up' ? 'ok' : h.state === 'down' ? 'bad' : 'warn') : '<small>not monitored</small>';
  return row([
    escapeHtml(u.name),
    escapeHtml(u.interface),
    escapeHtml(u.address ? `${u.address}/${u.prefixlen}` : '-'),
    escapeHtml(gateway),
    escapeHtml(String(u.table)),
    `${tone(u.state, u.state === 'ready' ? 'ok' : 'bad')}<br><small>${escapeHtml(u.reason)}</small>`,
    u.inDefault ? (u.lastResort ? tone('LAST RESORT', 'bad') : `yes (weight ${escapeHtml(String(u.weight))})`) : 'no',
    health,
    escapeHtml(ms(h?.rttMs)),
    escapeHtml(h?.lossPct === null || h?.lossPct === undefined ? '-' : `${h.lossPct.toFixed(0)}%`),
    escapeHtml(h ? formatDuration(now - h.since) : '-'),
  ]);
}

function summary(s: ServedStatus): string[] {
  const out = [
    `<p>pid ${escapeHtml(String(s.pid))}, running since ${escapeHtml(s.startedAt)}, config <code>${escapeHtml(s.configFile)}</code>, ${escapeHtml(String(s.cycles))} cycles. `
      + (s.inSync ? tone('The kernel matches the plan.', 'ok') : tone('The kernel does NOT fully match the plan (see the events and warnings).', 'bad')) + '</p>',
  ];
  const c = s.lastCycle;
  if (c) {
    const outcome = c.error ? `failed: ${c.error}` : `${c.applied} applied, ${c.failed} failed, ${c.deferred} held back`;
    out.push(`<p>Last cycle ${escapeHtml(c.at)}: ${escapeHtml(outcome)} <small>(cause: ${escapeHtml(c.causes.join('; '))})</small></p>`);
  }
  if (s.pinning) out.push(`<p>${escapeHtml(s.pinning)}</p>`);
  if (s.warnings.length) out.push(`<ul>${s.warnings.map((w) => `<li>${tone(`warning: ${w}`, 'warn')}</li>`).join('')}</ul>`);
  return out;
}

/** `11:03:33.229` with the full timestamp on hover: the date is the same for most events and made the column wrap. */
function timeOfDay(iso: string): string {
  const time = /T(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(iso)?.[1] ?? iso;
  return `<time datetime="${escapeHtml(iso)}" title="${escapeHtml(iso)}">${escapeHtml(time)}</time>`;
}

/**
 * The whole HTML page for one status taken at `now` (epoch ms): uplinks, health, policies, pinning, warnings and the
 * last events, every value escaped; it reloads itself every REFRESH_SECONDS seconds.
 */
export function renderStatusPage(s: ServedStatus, now: number): string {
  const parts = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="refresh" content="${REFRESH_SECONDS}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>uplinkd status</title><style>${STYLE}</style></head><body>`,
    '<h1>uplinkd</h1>',
    ...(s.uplinks.some((u) => u.lastResort)
      ? [`<p id="last-resort">${tone('LAST RESORT: every uplink is judged down by its health checks while its link is up; the default route keeps them anyway. Check the probe targets.', 'bad')}</p>`]
      : []),
    ...summary(s),
    '<h2>Uplinks</h2><table>',
    row(['Uplink', 'Interface', 'Address', 'Gateway', 'Table', 'State', 'In default', 'Health', 'RTT', 'Loss', 'Health for'], 'th'),
    ...s.uplinks.map((u) => uplinkRow(u, s.health[u.name], now)),
    '</table>',
    ...renderHistory(s.history, s.uplinks.map((u) => u.name)),
  ];
  if (s.policies?.length) {
    parts.push('<h2>Policies</h2><table>', row(['Policy', 'Priority', 'Uses now', 'Why', 'Rules'], 'th'));
    for (const p of s.policies) {
      parts.push(row([escapeHtml(p.name), String(p.priority), escapeHtml(p.uplink ?? p.action), escapeHtml(p.reason),
        p.rules.map((r) => `<code>${escapeHtml(r)}</code>`).join('<br>') || '-']));
    }
    parts.push('</table>');
  }
  if (s.conflicts.length) {
    parts.push('<h2>Restored recently</h2><p><small>Another program changed or removed these objects uplinkd owns.</small></p><ul>');
    for (const c of s.conflicts) {
      const held = c.retryAt ? `, held back until ${c.retryAt}` : '';
      parts.push(`<li><code>${escapeHtml(c.object)}</code>: ${escapeHtml(`restored ${c.restorations}x recently${held}`)}</li>`);
    }
    parts.push('</ul>');
  }
  const events = s.events.slice(-EVENTS_SHOWN).reverse();
  parts.push(`<h2>Last events</h2>`);
  if (events.length === 0) parts.push('<p>none yet</p>');
  else {
    parts.push('<table>', row(['Time', 'Event', 'What', 'Cause'], 'th'));
    for (const e of events) parts.push(row([timeOfDay(e.at), escapeHtml(e.event), escapeHtml(e.text), escapeHtml(e.cause ?? '-')]));
    parts.push('</table>');
  }
  parts.push(
    `<p><small>Read-only; refreshes every ${REFRESH_SECONDS} s. Also: <a href="/metrics">/metrics</a> (Prometheus), <a href="/status.json">/status.json</a>.</small></p>`,
    '</body></html>',
  );
  return parts.join('\n') + '\n';
}
