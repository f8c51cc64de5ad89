import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MONITOR_DEFAULTS } from '../config/defaults';
import {
  evaluate, healthStats, initialHealth, monitorRan, probeAnswered, probeFailed, probeSent, resetHealth, trafficSample,
  type HealthState, type Thresholds,
} from './state';
import { simulate, tokenBucket, type PathModel } from '../../test/support/health/simulate';
import { prng } from '../../test/support/prng';

const A = '203.0.113.5';
const B = '192.0.2.53';
const T: Thresholds = { ...MONITOR_DEFAULTS, targets: [A, B] };
const ONE: Thresholds = { ...T, targets: [A] };

const healthy = (rttMs = 20): PathModel => ({ probe: () => rttMs });
/** Dead from `at` on: probes before it answer with `rttMs`. */
const diesAt = (at: number, base: PathModel = healthy()): PathModel => ({
  probe: (target, sentAt) => (sentAt >= at ? null : base.probe(target, sentAt)),
  traffic: (now) => (base.traffic ? { ...base.traffic(now), ...(now >= at && { rx: 0 }) } : { tx: 0, rx: 0 }),
});
/** LAN traffic through the uplink: 20 packets out and in per 50 ms tick (a download's data and ACKs). */
const withTraffic = (base: PathModel): PathModel => ({ ...base, traffic: () => ({ tx: 20, rx: 20 }) });
/** Each direction drops with probability `perDirection`. */
const lossy = (perDirection: number, seed: number, rttMs = 20): PathModel => {
  const random = prng(seed);
  return { probe: () => (random() >= perDirection && random() >= perDirection ? rttMs + random() * 5 : null) };
};

/** Up after 10 s of a healthy path. */
function upAt10s(t: Thresholds = T, path: PathModel = healthy()) {
  const r = simulate(t, path, 10_000);
  assert.equal(r.health.state, 'up');
  return { health: r.health, at: 10_000 };
}

const downs = <C extends { to: string }>(changes: C[]): C[] => changes.filter((c) => c.to === "down");

describe('health judgement', () => {
  it('starts unknown and goes up on the first answer', () => {
    const r = simulate(T, healthy(), 100);
    assert.deepEqual(r.changes.map((c) => c.to), ['up']);
    assert.match(r.changes[0].reason, /probes answered \(rtt 20 ms\)/);
  });

  it('is polite: one probe per target per second in steady state, no bursts', () => {
    const r = simulate(T, healthy(), 60_000);
    assert.equal(r.probes.get(A), 60);
    assert.equal(r.probes.get(B), 60);
  });

  it('traffic that only leaves (nothing but probe answers comes back) is no stall: 1 probe per second per target, no false down under 20 % loss', () => {
    for (const seed of [1, 2]) {
      const random = prng(seed);
      const oneWay: PathModel = { probe: () => (random() >= 0.2 && random() >= 0.2 ? 20 + random() * 5 : null), traffic: () => ({ tx: 5, rx: 0 }) };
      const r = simulate(T, oneWay, 300_000);
      assert.deepEqual(downs(r.changes), []);
      // Bursts only when a steady round goes wholly unanswered (p² = 13 % of the seconds), at most 5 rounds each.
      assert.ok((r.probes.get(A) ?? 0) <= 300 * 1.5, `${r.probes.get(A)} probes to ${A} in 300 s`);
    }
  });

  it('a dead path with traffic flowing is down within 1 s, whatever the phase of the steady round', () => {
    for (let phase = 0; phase < 1000; phase += 50) {
      const start = upAt10s(T, withTraffic(healthy()));
      const dies = 10_000 + phase;
      const r = simulate(T, diesAt(dies, withTraffic(healthy())), 5_000, start);
      const d = downs(r.changes);
      assert.equal(d.length, 1, `phase ${phase}`);
      // The verdict within 0.7 s leaves the replan the rest of the 1 s (docs/health.md).
      assert.ok(d[0].at - dies <= 700, `phase ${phase}: down after ${d[0].at - dies} ms`);
      assert.match(d[0].reason, /packets left through the interface .* none came back/);
      assert.equal(d[0].pathSilent, true, 'confirmed dead: its connections may be cleared');
    }
  });

  it('a path dead upstream only (the far end\'s retransmissions still arrive) is down within 1 s with traffic', () => {
    const start = upAt10s(T, withTraffic(healthy()));
    // Before: 20 packets each way per 50 ms. After: a TCP sender's few packets out, a retransmission in every 400 ms.
    const oneWay: PathModel = {
      probe: (_t, at) => (at >= 10_000 ? null : 20),
      traffic: (now) => (now < 10_000 ? { tx: 20, rx: 20 } : { tx: now < 10_100 ? 5 : now % 200 === 0 ? 1 : 0, rx: now % 400 === 0 ? 1 : 0 }),
    };
    const r = simulate(T, oneWay, 5_000, start);
    const d = downs(r.changes);
    assert.equal(d.length, 1);
    assert.ok(d[0].at - 10_000 <= 1000, `down after ${d[0].at - 10_000} ms`);
    assert.equal(d[0].pathSilent, true);
  });

  it('a saturated upload (ACKs keep arriving, probes answered 2.5 s late) is never down', () => {
    const start = upAt10s(T, withTraffic(healthy()));
    const r = simulate(T, { probe: () => 2500, traffic: () => ({ tx: 10, rx: 5 }) }, 120_000, start);
    assert.deepEqual(downs(r.changes), []);
  });

  it('an idle dead path is down within 3 s, whatever the phase', () => {
    for (let phase = 0; phase < 1000; phase += 50) {
      const start = upAt10s();
      const dies = 10_000 + phase;
      const r = simulate(T, diesAt(dies), 6_000, start);
      const d = downs(r.changes);
      assert.equal(d.length, 1);
      assert.ok(d[0].at - dies <= 3000, `phase ${phase}: down after ${d[0].at - dies} ms`);
      assert.match(d[0].reason, /nothing answered for/);
    }
  });

  it('a suspicion is confirmed with a short burst, not by the steady rate', () => {
    const start = upAt10s();
    const r = simulate(T, diesAt(10_000), 3_000, start);
    // 4 steady rounds would be 4 probes per target in these 3 s; the burst adds down_after + 2 rounds.
    assert.ok((r.probes.get(A) ?? 0) >= 3 + T.downAfter, `probes ${r.probes.get(A)}`);
    assert.ok((r.probes.get(A) ?? 0) <= 4 + T.downAfter + 2);
  });

  it('a 3 s queue with traffic flowing is slow, not dead: degraded, never down', () => {
    const start = upAt10s(T, withTraffic(healthy()));
    const r = simulate(T, withTraffic(healthy(3000)), 120_000, start);
    assert.deepEqual(downs(r.changes), []);
    assert.equal(r.health.state, 'degraded');
    assert.match(r.health.reason, /mean rtt/);
  });

  it('a resolver that suddenly takes 1.5 s on an idle link is slow, not dead', () => {
    const start = upAt10s();
    const r = simulate(T, healthy(1500), 120_000, start);
    assert.deepEqual(downs(r.changes), []);
  });

  it('late answers (up to several seconds) count as proof of life: a suspicion ends', () => {
    let h = upAt10s().health;
    h = probeSent(h, { id: 1e6, round: 1e6, target: A, sentAt: 10_000, burst: false });
    let s = evaluate(h, 10_400, T);
    assert.ok(s.health.suspect, 'suspect after the RTO');
    assert.equal(s.burst, true);
    h = probeAnswered(s.health, { id: 1e6, at: 13_000, rttMs: 3000 });
    assert.equal(h.suspect, null);
    s = evaluate(h, 13_000, T);
    assert.equal(s.health.state, 'up');
  });

  it('targets silent while packets keep arriving: down only after the dead window, saying so', () => {
    const start = upAt10s(T, withTraffic(healthy()));
    const targetsDie: PathModel = { probe: (_t, at) => (at >= 10_000 ? null : 20), traffic: () => ({ tx: 20, rx: 20 }) };
    const r = simulate(T, targetsDie, 10_000, start);
    const d = downs(r.changes);
    assert.equal(d.length, 1);
    assert.ok(d[0].at - 10_000 >= 6000, `down after ${d[0].at - 10_000} ms`);
    assert.match(d[0].reason, /no target answered for .* although the interface received \d+ packets/);
    assert.equal(d[0].pathSilent, false, 'not confirmed dead: connections still receive, keep them');
  });

  for (const seed of [1, 2, 3]) {
    it(`20 % loss per direction, two targets, 5 min idle and 5 min with traffic: never down (seed ${seed})`, () => {
      const idle = simulate(T, lossy(0.2, seed), 300_000);
      assert.deepEqual(downs(idle.changes), []);
      const busy = lossy(0.2, seed + 100);
      const traffic = prng(seed);
      const r = simulate(T, { ...busy, traffic: () => ({ tx: 20, rx: Math.round(20 * 0.64 + traffic() * 4) }) }, 300_000);
      assert.deepEqual(downs(r.changes), []);
    });

    it(`targets rate-limiting ICMP to 2/s per source, with 20 % loss: no false down in 5 min (seed ${seed})`, () => {
      const buckets = new Map([[A, tokenBucket(2, 2)], [B, tokenBucket(2, 2)]]);
      const loss = lossy(0.2, seed);
      const r = simulate(T, { probe: (target, at) => (buckets.get(target)!(at) ? loss.probe(target, at) : null) }, 300_000);
      assert.deepEqual(downs(r.changes), []);
    });
  }

  describe('the monitor itself stalled (its event loop blocked, the machine paused, the clock stepped forward)', () => {
    /** Stalls of `ms` every `every` ms from 10 s on, for `duration` ms. */
    const stalls = (ms: number, every: number, duration: number) =>
      Array.from({ length: Math.floor((duration - 10_000) / every) }, (_, i) => ({ from: 10_000 + i * every + 137 * (i % 7), to: 10_000 + i * every + 137 * (i % 7) + ms }));

    it('a stall of 0.3-2 s while a lossy 300 ms RTT path is being checked is no silence of the path: no false down in 5 min', () => {
      for (const ms of [300, 700, 1_200, 2_000]) {
        for (const seed of [1, 2, 3]) {
          const r = simulate(T, { ...lossy(0.2, seed, 300), stalls: stalls(ms, 2_300, 300_000) }, 300_000);
          assert.deepEqual(downs(r.changes).map((c) => `${c.at}: ${c.reason}`), [], `stalls of ${ms} ms, seed ${seed}`);
        }
      }
    });

    it('a clock stepped 5 s forward while probes were out, on a healthy path: no down, no RTT sample of 5 s', () => {
      const start = upAt10s(T);
      // The round sent at 10 s is answered 20 ms later, read only after the step.
      const r = simulate(T, { ...healthy(), stalls: [{ from: 10_010, to: 15_010 }] }, 10_000, start);
      assert.deepEqual(downs(r.changes), []);
      assert.ok((r.health.srttMs ?? Infinity) < 100, `srtt ${r.health.srttMs}`);
    });

    it('a dead path is still judged down: the stall only leaves its own time out', () => {
      const start = upAt10s(T);
      // Dies at 10.5 s; the monitor stalls 10.6-12.6 s: 2 s of the silence are the monitor's, not evidence.
      const r = simulate(T, { ...diesAt(10_500), stalls: [{ from: 10_600, to: 12_600 }] }, 10_000, start);
      const d = downs(r.changes);
      assert.equal(d.length, 1);
      assert.ok(d[0].at >= 12_600 + 1_000, `down at ${d[0].at}: within 1 s of the stall's end the monitor has not seen 1.5 s of silence`);
      assert.ok(d[0].at <= 12_600 + 3_000, `down at ${d[0].at}`);
    });

    it('an answer read after a stall is proof of life but no RTT sample', () => {
      let h = monitorRan(initialHealth(0), 0, 50);
      h = probeSent(h, { id: 1, round: 0, target: A, sentAt: 0, burst: false });
      h = monitorRan(h, 50, 50);
      h = probeAnswered(probeSent(h, { id: 2, round: 1, target: B, sentAt: 50, burst: false }), { id: 2, at: 70, rttMs: 20 });
      h = monitorRan(h, 1_500, 50);
      assert.deepEqual(h.pauses, [{ from: 100, to: 1_500 }]);
      h = probeAnswered(h, { id: 1, at: 1_500, rttMs: 1_500 });
      assert.equal(h.lastAnswerAt, 1_500);
      assert.equal(h.srttMs, 20, 'only the answer outside the pause is a sample');
      // A run a little late is no pause; a clock that went back is ignored.
      assert.deepEqual(monitorRan(h, 1_640, 50).pauses, h.pauses);
      assert.equal(monitorRan(h, 1_000, 50), h);
    });
  });

  it('recovers on a rate: a target dropping every third answer still brings it back within 10 s of the repair', () => {
    let n = 0;
    const limited = (at: number): number | null => (at >= 20_000 && at < 23_000 ? null : n++ % 3 === 2 ? null : 20);
    const r = simulate(ONE, { probe: (_t, at) => limited(at) }, 40_000);
    const d = downs(r.changes);
    assert.equal(d.length, 1);
    const up = r.changes.find((c) => c.to === 'up' && c.at > d[0].at);
    assert.ok(up, 'back up');
    assert.ok(up.at - 23_000 <= 10_000, `up ${up.at - 23_000} ms after the repair`);
    assert.match(up.reason, /\d of the last \d probe rounds answered/);
  });

  it('does not come back on one lucky answer', () => {
    const start = upAt10s();
    const down = simulate(T, diesAt(10_000), 5_000, start);
    assert.equal(down.health.state, 'down');
    let k = 0;
    const r = simulate(T, { probe: () => (k++ === 0 ? 20 : null) }, 20_000, { health: down.health, at: 15_000 });
    assert.equal(r.health.state, 'down');
  });

  it('loss of the path is the best target\'s: a rate-limiting target is named, not blamed', () => {
    let n = 0;
    const r = simulate(T, { probe: (target) => (target === B && n++ % 2 === 0 ? null : 20) }, 90_000);
    const s = healthStats(r.health, 90_000, T);
    assert.equal(s.state, 'up');
    assert.equal(s.lossPct, 0);
    const b = s.targets.find((x) => x.target === B)!;
    assert.ok(b.lossPct !== null && b.lossPct > 40 && b.lossPct < 60);
    assert.match(b.note ?? '', /limits or drops probes/);
  });

  it('status never contradicts itself: a down uplink carries the reason next to its RTT and loss', () => {
    const start = upAt10s();
    const r = simulate(T, diesAt(10_000), 5_000, start);
    const s = healthStats(r.health, 15_000, T);
    assert.equal(s.state, 'down');
    assert.match(s.reason, /probe rounds to 203.0.113.5, 192.0.2.53 unanswered/);
  });

  it('an ICMP error fails a probe at once and names it', () => {
    let h = upAt10s().health;
    h = probeSent(h, { id: 1e6, round: 1e6, target: A, sentAt: 10_000, burst: false });
    h = probeFailed(h, { id: 1e6, at: 10_001, error: 'host unreachable (from 198.51.100.1)' });
    const s = evaluate(h, 10_001, T);
    assert.match(s.health.suspect?.cause ?? '', /host unreachable/);
    assert.equal(s.health.lastError, `${A} host unreachable (from 198.51.100.1)`);
  });

  it('degrades on loss and comes back under three quarters of the limit', () => {
    const r = simulate(ONE, lossy(0.3, 7), 180_000);
    assert.ok(r.changes.some((c) => c.to === 'degraded' && /loss/.test(c.reason)));
    const back = simulate(ONE, healthy(), 120_000, { health: r.health, at: 180_000 });
    assert.equal(back.health.state, 'up');
  });

  it('after an outage the recovered uplink is not degraded by the rounds lost while it was down', () => {
    // Down for 30 s (the outage's 30 lost rounds are half the 60-round window), then a clean path.
    for (const t of [ONE, T]) {
      const start = upAt10s(t);
      const down = simulate(t, diesAt(10_000), 30_000, start);
      assert.equal(down.health.state, 'down');
      const back = simulate(t, healthy(), 60_000, { health: down.health, at: 40_000 });
      assert.deepEqual(back.changes.map((c) => c.to), ['up'], `${t.targets.length} targets: ${JSON.stringify(back.changes)}`);
      assert.equal(healthStats(back.health, 100_000, t).lossPct, 0);
    }
    // The window still judges the recovered path: real loss after the recovery degrades it.
    const start = upAt10s(ONE);
    const down = simulate(ONE, diesAt(10_000), 30_000, start);
    const lossyBack = simulate(ONE, lossy(0.3, 11), 120_000, { health: down.health, at: 40_000 });
    assert.ok(lossyBack.changes.some((c) => c.to === 'degraded' && /loss/.test(c.reason)));
  });

  it('a target whose probes fail before leaving (a name that does not resolve) is noted with that cause', () => {
    const NAME = 'probe.example.net';
    const t: Thresholds = { ...T, targets: [A, NAME] };
    let h = initialHealth(0);
    for (let round = 0; round < 30; round++) {
      const at = round * 1000;
      h = probeSent(h, { id: 2 * round, round, target: A, sentAt: at, burst: false });
      h = probeSent(h, { id: 2 * round + 1, round, target: NAME, sentAt: at, burst: false });
      h = probeFailed(h, { id: 2 * round + 1, at, error: 'cannot resolve (EAI_AGAIN)' });
      h = probeAnswered(h, { id: 2 * round, at: at + 20, rttMs: 20 });
      h = evaluate(h, at + 20, t).health;
    }
    const s = healthStats(h, 30_000, t);
    assert.equal(s.state, 'up');
    const named = s.targets.find((x) => x.target === NAME)!;
    assert.equal(named.lossPct, 100);
    assert.match(named.note ?? '', /cannot resolve \(EAI_AGAIN\)/);
    assert.doesNotMatch(named.note ?? '', /does not answer|blocks probes/);
    assert.match(s.lastError ?? '', /cannot resolve/);
  });

  it('an answer without an RTT sample (a retransmitted probe) is proof of life and leaves the smoothed RTT alone', () => {
    const start = upAt10s();
    let h = probeSent(start.health, { id: 1e6, round: 1e6, target: A, sentAt: 10_000, burst: false });
    const s = evaluate(h, 10_400, T);
    assert.ok(s.health.suspect, 'suspect: not answered within the RTO');
    h = probeAnswered(s.health, { id: 1e6, at: 11_050 });
    assert.equal(h.suspect, null);
    assert.equal(h.lastAnswerAt, 11_050);
    assert.equal(h.srttMs, start.health.srttMs);
    assert.equal(h.probes.find((p) => p.id === 1e6)?.rttMs, undefined);
    assert.equal(healthStats(h, 11_050, T).rttMs, 20, 'the window\'s RTT has no 1 s sample');
  });

  it('resets to unknown with a reason, once', () => {
    const start = upAt10s();
    const s = resetHealth(start.health, 11_000, 'if1 has no address: not probed');
    assert.deepEqual(s.change, { from: 'up', to: 'unknown', reason: 'if1 has no address: not probed' });
    assert.equal(resetHealth(s.health, 12_000, 'again').change, undefined);
  });

  it('counters that go backwards (device recreated) start a new series instead of a stall', () => {
    const h: HealthState = initialHealth(0);
    const a = trafficSample(h, { at: 0, rxPackets: 100, txPackets: 100, probes: 0 });
    const b = trafficSample(a, { at: 50, rxPackets: 3, txPackets: 3, probes: 0 });
    assert.equal(b.traffic.length, 1);
  });
  describe('a path that answers with ICMP errors (refusals)', () => {
    const GW = '198.51.100.1';
    /**
     * From `at` on, the provider's router answers every probe with `words` after 1 ms, at most as
     * often as the kernel's per-source ICMP error limit lets it (burst 6, then 1/s); the rest vanish.
     */
    const refusesAt = (at: number, words = 'network unreachable', from: string | null = GW, base: PathModel = healthy()): PathModel => {
      const limit = tokenBucket(1, 6);
      return {
        probe: (target, sentAt) => (sentAt < at ? base.probe(target, sentAt) : limit(sentAt) ? { words, afterMs: 1, ...(from && { from }) } : null),
        traffic: base.traffic,
      };
    };

    it('is down a few burst rounds after the first refused probe, whatever the phase; the reason names the router, its error and the targets', () => {
      for (let phase = 0; phase < 1000; phase += 100) {
        const start = upAt10s();
        const dies = 10_000 + phase;
        const r = simulate(T, refusesAt(dies), 8_000, start);
        const d = downs(r.changes);
        assert.equal(d.length, 1, `phase ${phase}`);
        // Steady rounds leave at whole seconds (10 000 ms, 11 000 ms...): the next one meets the fault.
        const firstRefused = Math.ceil(dies / 1000) * 1000;
        assert.ok(d[0].at - firstRefused <= 400, `phase ${phase}: down ${d[0].at - firstRefused} ms after the first refused probe`);
        assert.match(d[0].reason, /^198\.51\.100\.1 answers 'network unreachable' for 203\.0\.113\.5, 192\.0\.2\.53 \(\d+ probe rounds failed or unanswered/);
      }
    });

    it('the errors are not "the interface still receives": down fast even though they arrive', () => {
      const start = upAt10s();
      const r = simulate(T, refusesAt(10_000, 'host unreachable'), 8_000, start);
      const d = downs(r.changes);
      assert.equal(d.length, 1);
      assert.doesNotMatch(d[0].reason, /although the interface received/);
      assert.equal(d[0].pathSilent, true, 'nothing but errors about our probes came back');
    });

    it('other packets still arriving do not hold it up, and are no excuse for a silent path', () => {
      const base = withTraffic(healthy());
      const start = upAt10s(T, base);
      const r = simulate(T, refusesAt(10_000, 'network unreachable', GW, base), 8_000, start);
      const d = downs(r.changes);
      assert.equal(d.length, 1);
      assert.ok(d[0].at - 10_000 <= 400, `down after ${d[0].at - 10_000} ms`);
      assert.equal(d[0].pathSilent, false, 'other packets still arrive: connections are not cleared');
    });

    it('a router out of error tokens: the refused target is named, the other as unanswered', () => {
      const start = upAt10s();
      const limit = tokenBucket(1, 1);
      const path: PathModel = { probe: (target, sentAt) => (sentAt < 10_000 ? 20 : target === A && limit(sentAt) ? { words: 'host unreachable', from: GW, afterMs: 1 } : null) };
      const d = downs(simulate(T, path, 8_000, start).changes);
      assert.equal(d.length, 1);
      assert.match(d[0].reason, /^198\.51\.100\.1 answers 'host unreachable' for 203\.0\.113\.5; no answer from 192\.0\.2\.53 \(/);
    });

    it('a TCP connect failing at once (no sender known) is a refusal too', () => {
      const start = upAt10s();
      const r = simulate(T, refusesAt(10_000, 'host unreachable', null), 8_000, start);
      const d = downs(r.changes);
      assert.equal(d.length, 1);
      assert.match(d[0].reason, /^connecting to 203\.0\.113\.5, 192\.0\.2\.53 fails at once with 'host unreachable'/);
    });

    it('one error does not take the uplink down', () => {
      const start = upAt10s();
      let once = true;
      const path: PathModel = {
        probe: (_target, sentAt) => (sentAt >= 10_000 && once ? ((once = false), { words: 'network unreachable', from: GW, afterMs: 1 }) : 20),
      };
      const r = simulate(T, path, 10_000, start);
      assert.deepEqual(downs(r.changes), []);
      assert.equal(r.health.state, 'up');
    });

    it('errors for one target while the other answers: the uplink stays up, the target is named', () => {
      const start = upAt10s();
      const path: PathModel = { probe: (target) => (target === A ? { words: 'host unreachable', from: GW, afterMs: 1 } : 20) };
      const r = simulate(T, path, 30_000, start);
      assert.deepEqual(downs(r.changes), []);
      assert.notEqual(r.health.state, 'down');
      const note = healthStats(r.health, 40_000, T).targets.find((x) => x.target === A)?.note;
      assert.equal(note, `198.51.100.1 answers 'host unreachable' for it while ${B} answers: the way to this target is broken, not the uplink`);
    });

    it('a burst of errors, then answers again: down, then up on the usual rate', () => {
      const start = upAt10s();
      const r = simulate(T, refusesAt(10_000), 5_000, start);
      assert.equal(r.health.state, 'down');
      const back = simulate(T, healthy(), 10_000, { health: r.health, at: 15_000 });
      assert.equal(back.health.state, 'up');
    });
  });
});
