import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HealthVerdict } from '../model/facts';
import { HealthHistory, HISTORY_MAX_CHANGES } from './history';
import type { HealthStats } from './state';

const T0 = 1_800_000_000_000; // a multiple of 5 s

function stats(state: HealthVerdict, rttMs: number | null, lossPct: number | null): HealthStats {
  return { state, since: T0, reason: 'r', rttMs, jitterMs: null, lossPct, targets: [], suspect: null, lastError: null };
}

describe('health history', () => {
  it('folds 1 s samples into 5 s buckets: mean RTT, highest loss, worst verdict', () => {
    const h = new HealthHistory();
    h.sample(T0 + 0, { isp1: stats('up', 10, 0) });
    h.sample(T0 + 1_000, { isp1: stats('up', 20, 5) });
    h.sample(T0 + 2_000, { isp1: stats('down', null, 100) });
    h.sample(T0 + 3_000, { isp1: stats('up', 12.345, 0) });
    h.sample(T0 + 5_000, { isp1: stats('up', 11, 0), isp2: stats('unknown', null, null) });
    const snap = h.snapshot(T0 + 6_000);
    assert.equal(snap.bucketMs, 5_000);
    assert.equal(snap.spanMs, 3_600_000);
    assert.deepEqual(snap.uplinks.isp1.points, [
      { at: T0, rttMs: 14.12, lossPct: 100, state: 'down' },
      { at: T0 + 5_000, rttMs: 11, lossPct: 0, state: 'up' },
    ]);
    assert.deepEqual(snap.uplinks.isp2.points, [{ at: T0 + 5_000, rttMs: null, lossPct: null, state: 'unknown' }]);
  });

  it('keeps an hour: 720 slots per uplink, older buckets overwritten and not served', () => {
    const h = new HealthHistory();
    for (let t = 0; t < 2 * 3_600_000; t += 1_000) h.sample(T0 + t, { isp1: stats('up', t / 1_000, 0) });
    const now = T0 + 2 * 3_600_000 - 1_000;
    const points = h.snapshot(now).uplinks.isp1.points;
    assert.equal(points.length, 720);
    assert.ok(points.every((p) => p.at > now - 3_600_000 && p.at <= now));
    assert.deepEqual(points.map((p) => p.at), [...points.map((p) => p.at)].sort((a, b) => a - b), 'oldest first');
    // The slots array never grows past one span's buckets.
    assert.equal((h as unknown as { rings: Map<string, { slots: unknown[] }> }).rings.get('isp1')!.slots.length, 720);
  });

  it('a gap in sampling leaves no bucket, and what is older than the span is dropped', () => {
    const h = new HealthHistory({ spanMs: 60_000, bucketMs: 5_000 });
    h.sample(T0, { isp1: stats('up', 5, 0) });
    h.sample(T0 + 30_000, { isp1: stats('up', 6, 0) });
    assert.deepEqual(h.snapshot(T0 + 30_000).uplinks.isp1.points.map((p) => p.at), [T0, T0 + 30_000]);
    assert.deepEqual(h.snapshot(T0 + 61_000).uplinks.isp1.points.map((p) => p.at), [T0 + 30_000]);
  });

  it('records state changes with their cause; the change\'s bucket shows the new verdict', () => {
    const h = new HealthHistory();
    h.sample(T0, { isp1: stats('up', 5, 0) });
    h.change('isp1', { at: T0 + 7_250, from: 'up', to: 'down', reason: '3 probe rounds unanswered' });
    h.change('isp1', { at: T0 + 20_000, from: 'down', to: 'up', reason: 'most recent probes answered' });
    const snap = h.snapshot(T0 + 21_000);
    assert.deepEqual(snap.uplinks.isp1.changes, [
      { at: T0 + 7_250, from: 'up', to: 'down', reason: '3 probe rounds unanswered' },
      { at: T0 + 20_000, from: 'down', to: 'up', reason: 'most recent probes answered' },
    ]);
    assert.deepEqual(snap.uplinks.isp1.points.map((p) => [p.at, p.state]), [[T0, 'up'], [T0 + 5_000, 'down'], [T0 + 20_000, 'up']]);
  });

  it('keeps at most HISTORY_MAX_CHANGES changes per uplink, the newest, and only those within the span', () => {
    const h = new HealthHistory();
    for (let i = 0; i < HISTORY_MAX_CHANGES + 50; i++) {
      h.change('isp1', { at: T0 + i * 1_000, from: i % 2 ? 'down' : 'up', to: i % 2 ? 'up' : 'down', reason: `flap ${i}` });
    }
    const changes = h.snapshot(T0 + (HISTORY_MAX_CHANGES + 50) * 1_000).uplinks.isp1.changes;
    assert.equal(changes.length, HISTORY_MAX_CHANGES);
    assert.equal(changes.at(-1)!.reason, `flap ${HISTORY_MAX_CHANGES + 49}`);
    assert.deepEqual(h.snapshot(T0 + 3_600_000 + 99_500).uplinks.isp1.changes.map((c) => c.reason), [...Array(150).keys()].map((i) => `flap ${i + 100}`));
  });

  it('forgets an uplink that was not sampled for a whole span (removed or renamed)', () => {
    const h = new HealthHistory({ spanMs: 60_000, bucketMs: 5_000 });
    h.sample(T0, { old: stats('up', 1, 0), isp1: stats('up', 1, 0) });
    h.sample(T0 + 30_000, { isp1: stats('up', 1, 0) });
    assert.deepEqual(Object.keys(h.snapshot(T0 + 30_000).uplinks), ['isp1', 'old']);
    h.sample(T0 + 60_000, { isp1: stats('up', 1, 0) });
    assert.deepEqual(Object.keys(h.snapshot(T0 + 60_000).uplinks), ['isp1']);
  });

  it('refuses a span that is not a positive multiple of the bucket', () => {
    assert.throws(() => new HealthHistory({ spanMs: 7_000, bucketMs: 5_000 }), RangeError);
    assert.throws(() => new HealthHistory({ bucketMs: 0 }), RangeError);
  });
});
