import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthHistory, type HistorySnapshot } from '../health/history';
import type { HealthStats } from '../health/state';
import type { HealthVerdict } from '../model/facts';
import { niceCeiling, renderHistory } from './history-chart';
import { renderStatusPage } from './status-page';
import { SAMPLE_NOW, sampleStatus } from '../../test/support/daemon';

const T0 = SAMPLE_NOW - 120_000;

function stats(state: HealthVerdict, rttMs: number | null, lossPct: number | null): HealthStats {
  return { state, since: T0, reason: 'r', rttMs, jitterMs: null, lossPct, targets: [], suspect: null, lastError: null };
}

/** Two minutes of isp1: up at ~10 ms, down for 20 s (no answers, 100 % loss), back up. */
function sampleHistory(): HistorySnapshot {
  const h = new HealthHistory();
  for (let t = T0; t < SAMPLE_NOW; t += 1_000) {
    const down = t >= T0 + 40_000 && t < T0 + 60_000;
    h.sample(t, { isp1: down ? stats('down', null, 100) : stats('up', 10 + (t % 3_000) / 1_000, 0) });
  }
  h.change('isp1', { at: T0 + 40_000, from: 'up', to: 'down', reason: '3 probe rounds unanswered <"late">' });
  h.change('isp1', { at: T0 + 60_000, from: 'down', to: 'up', reason: 'most recent probes answered' });
  return h.snapshot(SAMPLE_NOW);
}

/** The attributes of every element carrying data-series. */
function series(html: string): Record<string, string>[] {
  return [...html.matchAll(/<(?:path|g) ([^>]*data-series="[^"]*"[^>]*)>/g)].map((m) =>
    Object.fromEntries([...m[1].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
}

describe('status page history chart', () => {
  it('draws RTT, loss and state of each uplink with the values of the history in data-points', () => {
    const h = sampleHistory();
    const html = renderHistory(h, ['isp1', 'isp2']).join('\n');
    const drawn = series(html);
    const of = (name: string) => drawn.find((s) => s['data-uplink'] === 'isp1' && s['data-series'] === name)!;
    const points = h.uplinks.isp1.points;
    assert.equal(points.length, 24);
    assert.equal(of('rtt')['data-points'], points.filter((p) => p.rttMs !== null).map((p) => `${p.at}:${p.rttMs}`).join(' '));
    assert.equal(of('loss')['data-points'], points.map((p) => `${p.at}:${p.lossPct}`).join(' '));
    assert.equal(of('state')['data-points'], points.map((p) => `${p.at}:${p.state}`).join(' '));
    // The RTT line breaks over the outage (no answers): two runs, as many vertices as values.
    assert.equal(of('rtt').d.split(' ').length, points.filter((p) => p.rttMs !== null).length);
    assert.equal((of('rtt').d.match(/M/g) ?? []).length, 2);
    assert.ok(!drawn.some((s) => s['data-uplink'] === 'isp2'), 'no history, no chart');
  });

  it('marks each state change with its cause in a <title> and lists them newest first', () => {
    const html = renderHistory(sampleHistory(), ['isp1']).join('\n');
    const marks = [...html.matchAll(/<g class="change" data-at="(\d+)" data-from="(\w+)" data-to="(\w+)" data-reason="([^"]*)"><title>([^<]*)<\/title>/g)];
    assert.deepEqual(marks.map((m) => [Number(m[1]), m[2], m[3]]), [[T0 + 40_000, 'up', 'down'], [T0 + 60_000, 'down', 'up']]);
    assert.equal(marks[0][4], '3 probe rounds unanswered &lt;&quot;late&quot;&gt;');
    assert.equal(marks[0][5], '09:58:40 up -&gt; down: 3 probe rounds unanswered &lt;&quot;late&quot;&gt;');
    assert.ok(html.indexOf('most recent probes answered</li>') < html.indexOf('unanswered &lt;&quot;late&quot;&gt;</li>'), 'newest first');
  });

  it('x covers what there is (at least a minute, at most the span); y puts 0 at the bottom and the ceiling at the top', () => {
    const h = sampleHistory();
    const html = renderHistory(h, ['isp1']).join('\n');
    assert.match(html, new RegExp(`<svg class="history" data-uplink="isp1" data-from="${T0}" data-to="${SAMPLE_NOW}"`));
    const rtt = series(html).find((s) => s['data-series'] === 'rtt')!;
    assert.equal(rtt['data-max'], '20');
    const ys = [...rtt.d.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
    const values = rtt['data-points'].split(' ').map((p) => Number(p.split(':')[1]));
    // RTT panel: y 92 is 0 ms, y 20 is data-max.
    ys.forEach((y, i) => assert.ok(Math.abs(y - (92 - (72 * values[i]) / 20)) < 0.06, `point ${i}: y ${y} for ${values[i]} ms`));
  });

  it('the status page carries the section only when there is a history, and stays script-free', () => {
    const s = sampleStatus();
    assert.doesNotMatch(renderStatusPage(s, SAMPLE_NOW), /Last hour/);
    s.history = sampleHistory();
    const html = renderStatusPage(s, SAMPLE_NOW);
    assert.match(html, /<h2 id="history">Last hour<\/h2>/);
    assert.doesNotMatch(html, /<script|<link|<img|src=|https?:\/\//i);
  });

  it('nice ceilings: 1, 2 or 5 times a power of ten', () => {
    assert.deepEqual([0.3, 1, 1.1, 2.5, 7, 13, 180].map(niceCeiling), [0.5, 1, 2, 5, 10, 20, 200]);
  });
});
