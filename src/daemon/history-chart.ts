// The status page's "last hour": per monitored uplink one inline SVG with RTT, loss and the
// verdict over time, and each state change marked with its cause (a line with a <title>). No
// scripts: the page must stay inert under its Content-Security-Policy. Every drawn series carries
// its data (data-uplink, data-series, data-points="epoch-ms:value ...") so what was drawn can be
// checked against /status.json. Pure.
import type { HistoryChange, HistoryPoint, HistorySnapshot } from '../health/history';
import { LATE_MS } from '../health/state';
import type { HealthVerdict } from '../model/facts';

/** Chart geometry in SVG user units (the SVG scales to the page width). */
const WIDTH = 760;
const LEFT = 58;
const RIGHT = WIDTH - 12;
const RTT = { top: 20, bottom: 92 };
const LOSS = { top: 108, bottom: 148 };
const STATE = { top: 162, bottom: 178 };
const HEIGHT = 200;
/** The x axis covers what there is, at least this much, at most the history's span. */
const MIN_SHOWN_MS = 60_000;
const CHANGES_LISTED = 10;

const COLOUR: Record<HealthVerdict, string> = { up: '#2e9d4a', degraded: '#d69a00', down: '#c62828', unknown: '#9e9e9e' };

const escape = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** `HH:MM:SS` of an epoch ms, UTC (the page's other times are UTC too). */
function clock(at: number, seconds = true): string {
  return new Date(at).toISOString().slice(11, seconds ? 19 : 16);
}

/** The smallest 1, 2 or 5 times a power of ten that is >= value (value > 0). */
export function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((c) => c >= value - 1e-9)!;
}

interface Scale {
  from: number;
  to: number;
  /** The x coordinate (SVG user units) of time `at`, epoch ms. */
  x(at: number): number;
}

function timeScale(h: HistorySnapshot, points: HistoryPoint[], changes: HistoryChange[]): Scale {
  const earliest = Math.min(points[0]?.at ?? h.at, changes[0]?.at ?? h.at);
  const from = Math.max(h.at - h.spanMs, Math.min(earliest, h.at - MIN_SHOWN_MS));
  const to = h.at;
  return { from, to, x: (at) => LEFT + ((RIGHT - LEFT) * (Math.min(Math.max(at, from), to) - from)) / (to - from) };
}

const num = (v: number): string => v.toFixed(1);

/**
 * One line series as a path broken at missing values and missing buckets. `max` is the value at
 * the panel's top. data-points lists exactly the values drawn, in order.
 */
function lineSeries(uplink: string, series: 'rtt' | 'loss', points: HistoryPoint[], value: (p: HistoryPoint) => number | null,
  x: Scale, panel: { top: number; bottom: number }, max: number, bucketMs: number, colour: string): string {
  const drawn = points.filter((p) => value(p) !== null);
  let d = '';
  let previous: number | undefined;
  for (const p of drawn) {
    const v = value(p)!;
    const y = panel.bottom - ((panel.bottom - panel.top) * Math.min(v, max)) / max;
    d += `${previous !== undefined && p.at - previous <= bucketMs ? 'L' : 'M'}${num(x.x(p.at))},${num(y)} `;
    previous = p.at;
  }
  return `<path class="series" data-uplink="${escape(uplink)}" data-series="${series}" data-max="${max}" `
    + `data-points="${drawn.map((p) => `${p.at}:${value(p)}`).join(' ')}" d="${d.trim() || 'M0,0'}" fill="none" stroke="${colour}" stroke-width="1.5"/>`;
}

function stateSeries(uplink: string, points: HistoryPoint[], x: Scale, bucketMs: number): string {
  const rects = points.map((p) => {
    const x0 = x.x(p.at);
    const x1 = x.x(p.at + bucketMs);
    return `<rect x="${num(x0)}" y="${STATE.top}" width="${num(Math.max(x1 - x0, 0.5))}" height="${STATE.bottom - STATE.top}" fill="${COLOUR[p.state]}"><title>${clock(p.at)} ${p.state}</title></rect>`;
  });
  return `<g data-uplink="${escape(uplink)}" data-series="state" data-points="${points.map((p) => `${p.at}:${p.state}`).join(' ')}">${rects.join('')}</g>`;
}

function changeMarkers(uplink: string, changes: HistoryChange[], x: Scale): string {
  const marks = changes.map((c) => {
    const cx = num(x.x(c.at));
    const text = `${clock(c.at)} ${c.from} -> ${c.to}: ${c.reason}`;
    return `<g class="change" data-at="${c.at}" data-from="${c.from}" data-to="${c.to}" data-reason="${escape(c.reason)}">`
      + `<title>${escape(text)}</title>`
      + `<line x1="${cx}" y1="${RTT.top - 6}" x2="${cx}" y2="${STATE.bottom}" stroke="${COLOUR[c.to]}" stroke-width="1.5" stroke-dasharray="4 2"/>`
      + `<circle cx="${cx}" cy="${RTT.top - 8}" r="5" fill="${COLOUR[c.to]}"/></g>`;
  });
  return `<g data-uplink="${escape(uplink)}" data-series="changes">${marks.join('')}</g>`;
}

function axisText(xPos: number, y: number, text: string, anchor: 'start' | 'middle' | 'end' = 'end'): string {
  return `<text x="${num(xPos)}" y="${y}" text-anchor="${anchor}" font-size="11" fill="#555">${escape(text)}</text>`;
}

/** One uplink's chart and its changes listed in words (newest first). */
function uplinkChart(h: HistorySnapshot, uplink: string): string {
  const { points, changes } = h.uplinks[uplink];
  const x = timeScale(h, points, changes);
  const rtts = points.map((p) => p.rttMs).filter((v): v is number => v !== null);
  const rttMax = niceCeiling(Math.max(1, ...rtts) * 1.1);
  const grid = [RTT, LOSS].map((p) => `<rect x="${LEFT}" y="${p.top}" width="${RIGHT - LEFT}" height="${p.bottom - p.top}" fill="#fafafa" stroke="#ddd"/>`);
  const labels = [
    axisText(LEFT - 6, RTT.top + 4, `${rttMax} ms`), axisText(LEFT - 6, RTT.bottom, '0'), axisText(LEFT - 6, (RTT.top + RTT.bottom) / 2 + 4, 'RTT'),
    axisText(LEFT - 6, LOSS.top + 4, '100%'), axisText(LEFT - 6, LOSS.bottom, '0%'), axisText(LEFT - 6, (LOSS.top + LOSS.bottom) / 2 + 4, 'loss'),
    axisText(LEFT - 6, STATE.bottom - 3, 'state'),
    axisText(LEFT, HEIGHT - 4, `${clock(x.from)} UTC`, 'start'), axisText((LEFT + RIGHT) / 2, HEIGHT - 4, clock((x.from + x.to) / 2), 'middle'),
    axisText(RIGHT, HEIGHT - 4, clock(x.to), 'end'),
  ];
  const svg = `<svg class="history" data-uplink="${escape(uplink)}" data-from="${x.from}" data-to="${x.to}" viewBox="0 0 ${WIDTH} ${HEIGHT}" `
    + `width="${WIDTH}" height="${HEIGHT}" style="max-width:100%;height:auto" role="img" aria-label="${escape(`${uplink}: RTT, loss and state since ${clock(x.from)} UTC`)}">`
    + grid.join('') + labels.join('')
    + lineSeries(uplink, 'rtt', points, (p) => p.rttMs, x, RTT, rttMax, h.bucketMs, '#1565c0')
    + lineSeries(uplink, 'loss', points, (p) => p.lossPct, x, LOSS, 100, h.bucketMs, '#c62828')
    + stateSeries(uplink, points, x, h.bucketMs)
    + changeMarkers(uplink, changes, x)
    + '</svg>';
  const listed = changes.slice(-CHANGES_LISTED).reverse()
    .map((c) => `<li><time>${clock(c.at)}</time> ${escape(c.from)} -&gt; <span style="color:${COLOUR[c.to]};font-weight:600">${escape(c.to)}</span>: ${escape(c.reason)}</li>`);
  return `<h3>${escape(uplink)}</h3>\n${svg}\n`
    + (listed.length ? `<ul class="changes">${listed.join('')}</ul>` : '<p><small>no state change in this period</small></p>');
}

/**
 * The "Last hour" section for `uplinks` (page order) that have a history; [] when none has. Times
 * are UTC; a bucket is `h.bucketMs` wide (RTT: mean, loss: highest, state: worst of its samples).
 */
export function renderHistory(h: HistorySnapshot | undefined, uplinks: string[]): string[] {
  const shown = uplinks.filter((u) => h?.uplinks[u]);
  if (!h || shown.length === 0) return [];
  const legend = (Object.keys(COLOUR) as HealthVerdict[])
    .map((s) => `<span style="display:inline-block;width:.8em;height:.8em;background:${COLOUR[s]}"></span> ${s}`).join(' &nbsp;');
  return [
    '<h2 id="history">Last hour</h2>',
    `<p><small>Per ${h.bucketMs / 1000} s: mean RTT, highest loss, worst state, as the health monitor judges them (a probe counts as lost once unanswered for ${LATE_MS / 1000} s). Dashed lines: state changes, with their cause on hover and below. ${legend}</small></p>`,
    ...shown.map((u) => uplinkChart(h, u)),
  ];
}
