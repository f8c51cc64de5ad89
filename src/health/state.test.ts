import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MONITOR_DEFAULTS } from '../config/defaults';
import {
  healthStats,
  initialHealth,
  observeLate,
  observeRound,
  resetHealth,
  type HealthState,
  type ProbeResult,
  type Thresholds,
  type Transition,
} from './state';

const T: Thresholds = { quorum: 1, downAfter: 12, upAfter: 40, window: 100, degradedLossPct: 40, degradedRttMs: 250 };
const A = '203.0.113.5';
const B = '192.0.2.53';

const ok = (target: string, rttMs = 10): ProbeResult => ({ target, ok: true, rttMs });
const lost = (target: string, error = 'timeout'): ProbeResult => ({ target, ok: false, error });

/** Feeds rounds one by one; returns the final state and every transition seen. */
function run(start: HealthState, rounds: ProbeResult[][], t: Thresholds = T) {
  let h = start;
  const changes: (Transition & { round: number })[] = [];
  rounds.forEach((results, i) => {
    const step = observeRound(h, { at: i, results }, t);
    h = step.health;
    if (step.change) changes.push({ ...step.change, round: i });
  });
  return { h, changes };
}

const times = <T>(n: number, item: T): T[] => Array.from({ length: n }, () => item);

function upState(t: Thresholds = T): HealthState {
  const { h } = run(initialHealth(0), times(t.window, [ok(A), ok(B)]), t);
  assert.equal(h.state, 'up');
  return h;
}

/** mulberry32: a small seeded PRNG so the random-loss runs are repeatable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rounds where each probe's request and reply are each dropped with probability `perDirection`. */
function lossyRounds(n: number, targets: string[], perDirection: number, seed: number): ProbeResult[][] {
  const random = prng(seed);
  return Array.from({ length: n }, () =>
    targets.map((target) => {
      const through = random() >= perDirection && random() >= perDirection;
      return through ? ok(target, 20 + random() * 5) : lost(target);
    }),
  );
}

describe('health state machine', () => {
  it('starts unknown and goes up on the first good round', () => {
    const { h, changes } = run(initialHealth(0), [[ok(A, 12.34), lost(B)]]);
    assert.equal(h.state, 'up');
    assert.equal(changes.length, 1);
    assert.equal(changes[0].from, 'unknown');
    assert.equal(changes[0].to, 'up');
    assert.equal(changes[0].reason, `probes answered: ${A} 12.3 ms, ${B} timeout`);
  });

  it('stays unknown through fewer than downAfter failed rounds, then goes down', () => {
    const before = run(initialHealth(0), times(T.downAfter - 1, [lost(A), lost(B)]));
    assert.equal(before.h.state, 'unknown');
    assert.equal(before.changes.length, 0);
    const { h, changes } = run(before.h, [[lost(A), lost(B)]]);
    assert.equal(h.state, 'down');
    assert.deepEqual(changes.map((c) => [c.from, c.to]), [['unknown', 'down']]);
  });

  it('goes down exactly at the downAfter-th failed round in a row, with the errors in the reason', () => {
    const { h, changes } = run(upState(), [
      ...times(T.downAfter - 1, [lost(A), lost(B)]),
      [lost(A, 'timeout'), lost(B, 'host unreachable (from 198.51.100.1)')],
    ]);
    assert.equal(h.state, 'down');
    assert.equal(changes.length, 1);
    assert.equal(changes[0].round, T.downAfter - 1);
    assert.equal(changes[0].reason, `12 probe rounds in a row failed: ${A} timeout, ${B} host unreachable (from 198.51.100.1)`);
  });

  it('a good round ends the failure streak', () => {
    const { h, changes } = run(upState(), [
      ...times(T.downAfter - 1, [lost(A), lost(B)]),
      [lost(A), ok(B)],
      ...times(T.downAfter - 1, [lost(A), lost(B)]),
    ]);
    assert.equal(h.state, 'up');
    assert.deepEqual(changes, []);
  });

  it('one answering target is enough with quorum 1', () => {
    const { h, changes } = run(upState(), times(1000, [lost(A), ok(B)]));
    assert.notEqual(h.state, 'down');
    assert.ok(changes.every((c) => c.to !== 'down'));
  });

  it('with quorum 2 of 2, one silent target fails every round', () => {
    const t = { ...T, quorum: 2 };
    const { h, changes } = run(upState(t), times(t.downAfter, [lost(A), ok(B)]), t);
    assert.equal(h.state, 'down');
    assert.equal(changes.at(-1)?.reason, `12 probe rounds in a row failed: ${A} timeout; 1 of 2 answered, quorum 2`);
  });

  it('a quorum above the number of targets is capped at the number of targets', () => {
    const t = { ...T, quorum: 5 };
    const { h } = run(initialHealth(0), [[ok(A), ok(B)]], t);
    assert.equal(h.state, 'up');
  });

  it('comes back up only after upAfter good rounds in a row', () => {
    const down = run(upState(), times(T.downAfter, [lost(A), lost(B)])).h;
    assert.equal(down.state, 'down');
    const almost = run(down, [
      ...times(T.upAfter - 1, [ok(A), ok(B)]),
      [lost(A), lost(B)],
      ...times(T.upAfter - 1, [ok(A, 30), ok(B, 30)]),
    ]);
    assert.equal(almost.h.state, 'down');
    assert.deepEqual(almost.changes, []);
    const back = run(almost.h, [[ok(A, 30), ok(B, 30)]]);
    assert.equal(back.h.state, 'up');
    assert.equal(back.changes[0].reason, '40 probe rounds in a row succeeded (mean rtt 30 ms)');
  });

  it('the outage does not count as loss once the uplink is back', () => {
    const down = run(upState(), times(60, [lost(A), lost(B)])).h;
    const { h } = run(down, times(T.upAfter, [ok(A), ok(B)]));
    assert.equal(h.state, 'up');
    assert.equal(healthStats(h).lossPct, 0);
  });

  it('a late answer ends the failure streak (a slow path is not a dead path)', () => {
    let h = run(upState(), times(T.downAfter - 1, [lost(A), lost(B)])).h;
    h = observeLate(h, { target: A, rttMs: 700 });
    const { h: after, changes } = run(h, times(T.downAfter - 1, [lost(A), lost(B)]));
    assert.equal(after.state, 'up');
    assert.deepEqual(changes, []);
    const { h: dead } = run(after, [[lost(A), lost(B)]]);
    assert.equal(dead.state, 'down', 'the streak goes on counting after the late answer');
  });

  it('a late answer adds its RTT to the window', () => {
    const h = observeLate(run(initialHealth(0), [[ok(A, 10)]]).h, { target: A, rttMs: 30 });
    assert.equal(healthStats(h).rttMs, 20);
    assert.equal(healthStats(h).jitterMs, 20);
  });

  it('degrades on loss over the window and recovers under three quarters of the limit', () => {
    const up = upState();
    // Half the probes lost: one of two targets silent, the quorum still met.
    const lossy = run(up, times(T.window, [lost(A), ok(B)]));
    assert.equal(lossy.h.state, 'degraded');
    assert.equal(lossy.changes.length, 1);
    assert.match(lossy.changes[0].reason, /^loss 40\.5% over the last 100 rounds \(limit 40%\)$/);
    // 35 % loss: under the limit but above 30 %: stays degraded.
    const pattern = (i: number) => (i % 20 < 14 ? [lost(A), ok(B)] : [ok(A), ok(B)]);
    const middling = run(lossy.h, Array.from({ length: T.window }, (_, i) => pattern(i)));
    assert.equal(middling.h.state, 'degraded');
    assert.deepEqual(middling.changes, []);
    const clean = run(middling.h, times(T.window, [ok(A), ok(B)]));
    assert.equal(clean.h.state, 'up');
    assert.match(clean.changes[0].reason, /^loss 30% and mean rtt 10 ms over the last 100 rounds, back under 30% and 187.5 ms$/);
  });

  it('degrades on mean RTT and recovers', () => {
    const slow = run(upState(), times(T.window, [ok(A, 400), ok(B, 400)]));
    assert.equal(slow.h.state, 'degraded');
    assert.match(slow.changes[0].reason, /^mean rtt 2\d\d(\.\d)? ms over the last 100 rounds \(limit 250 ms\)$/);
    const fast = run(slow.h, times(T.window, [ok(A, 20), ok(B, 20)]));
    assert.equal(fast.h.state, 'up');
  });

  it('does not judge quality on a half-empty window', () => {
    const { h, changes } = run(initialHealth(0), [[ok(A), ok(B)], ...times(T.window / 2 - 2, [lost(A), ok(B)])]);
    assert.equal(h.state, 'up');
    assert.equal(changes.length, 1);
    const more = run(h, [[lost(A), ok(B)]]);
    assert.equal(more.h.state, 'degraded');
  });

  it('goes from degraded straight to down', () => {
    const degraded = run(upState(), times(T.window, [lost(A), ok(B)])).h;
    const { h, changes } = run(degraded, times(T.downAfter, [lost(A), lost(B)]));
    assert.equal(h.state, 'down');
    assert.deepEqual(changes.map((c) => [c.from, c.to]), [['degraded', 'down']]);
  });

  it('resets to unknown with a reason, once', () => {
    const step = resetHealth(upState(), 5000, 'no address on if1: not probed');
    assert.equal(step.health.state, 'unknown');
    assert.equal(step.health.since, 5000);
    assert.deepEqual(step.change, { from: 'up', to: 'unknown', reason: 'no address on if1: not probed' });
    assert.equal(resetHealth(step.health, 6000, 'again').change, undefined);
  });

  it('reports loss, mean RTT, jitter and the last error over the window', () => {
    const { h } = run(initialHealth(0), [
      [ok(A, 10), ok(B, 100)],
      [ok(A, 14), lost(B, 'port unreachable')],
      [ok(A, 12), ok(B, 90)],
      [lost(A), ok(B, 96)],
    ]);
    const s = healthStats(h);
    assert.equal(s.state, 'up');
    assert.equal(s.lossPct, 25);
    assert.equal(s.rttMs, (10 + 100 + 14 + 12 + 90 + 96) / 6);
    // A: |14-10|, |12-14|; B: |90-100|, |96-90|
    assert.equal(s.jitterMs, (4 + 2 + 10 + 6) / 4);
    assert.equal(s.lastError, `${A} timeout`);
    assert.deepEqual(healthStats(initialHealth(0)), {
      state: 'unknown', since: 0, rttMs: null, jitterMs: null, lossPct: null, lastError: null,
    });
  });

  it('keeps only the last `window` rounds', () => {
    const { h } = run(initialHealth(0), [...times(10, [lost(A), ok(B)]), ...times(T.window, [ok(A), ok(B)])]);
    assert.equal(h.window.length, T.window);
    assert.equal(healthStats(h).lossPct, 0);
  });
});

describe('health under random loss (seeded)', () => {
  const ROUNDS_5_MIN = (5 * 60 * 1000) / MONITOR_DEFAULTS.intervalMs;

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`10 % loss per direction, two targets, 1 h of rounds: never leaves up (seed ${seed})`, () => {
      const { h, changes } = run(upState(), lossyRounds(12 * ROUNDS_5_MIN, [A, B], 0.1, seed));
      assert.deepEqual(changes, []);
      const loss = healthStats(h).lossPct ?? 0;
      assert.ok(loss > 10 && loss < 30, `probe loss ${loss}% is about 19%`);
    });
  }

  for (const seed of [11, 12, 13]) {
    it(`10 % loss per direction, one target, 5 min of rounds: never leaves up (seed ${seed})`, () => {
      const one = upState();
      const { changes } = run(one, lossyRounds(ROUNDS_5_MIN, [A], 0.1, seed));
      assert.deepEqual(changes, []);
    });
  }

  for (const seed of [21, 22, 23]) {
    it(`20 % loss per direction, two targets, 5 min of rounds: never goes down (seed ${seed})`, () => {
      const { changes } = run(upState(), lossyRounds(ROUNDS_5_MIN, [A, B], 0.2, seed));
      assert.ok(changes.every((c) => c.to !== 'down'), JSON.stringify(changes));
    });
  }

  it('50 % loss per direction, two targets, does go degraded', () => {
    const { changes } = run(upState(), lossyRounds(ROUNDS_5_MIN, [A, B], 0.5, 31));
    assert.equal(changes[0]?.to, 'degraded');
  });

  for (const seed of [41, 42, 43]) {
    it(`total loss after random loss is detected within downAfter rounds (seed ${seed})`, () => {
      const noisy = run(upState(), lossyRounds(ROUNDS_5_MIN / 10, [A, B], 0.1, seed)).h;
      assert.equal(noisy.state, 'up');
      const { changes } = run(noisy, times(T.downAfter, [lost(A), lost(B)]));
      assert.equal(changes.length, 1);
      assert.equal(changes[0].to, 'down');
      assert.ok(changes[0].round < T.downAfter);
    });
  }

  it('with the default timing, total loss is detected within 1 s of the last answer', () => {
    const d = MONITOR_DEFAULTS;
    // The first round sent after the path died is judged timeoutMs later; downAfter-1 more rounds
    // follow at intervalMs; the path may die up to one interval before the next round is sent.
    const worst = (d.downAfter - 1) * d.intervalMs + d.timeoutMs + d.intervalMs;
    assert.ok(worst <= 950, `worst-case detection ${worst} ms`);
  });
});
