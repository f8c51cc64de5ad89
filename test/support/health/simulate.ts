// A virtual-clock driver of the pure judgement (src/health/state.ts) for unit tests: it sends steady and
// burst rounds exactly as HealthMonitor does (steady every interval, a burst round every
// burstSpacingMs while one is wanted, the first one of a traffic stall in the tick that saw it; a
// judgement every TICK_MS, on every answer and at each burst round's RTO) through a modelled path.
// A path may stall the monitor itself (its event loop blocked, the machine paused): no tick runs
// then, and what arrived meanwhile is read after the first tick that runs again (timers before I/O).
import { TICK_MS } from '../../../src/health/monitor';
import {
  burstSpacingMs, evaluate, initialHealth, monitorRan, probeAnswered, probeFailed, probeSent, rtoMs, trafficSample,
  type HealthState, type Refusal, type Thresholds, type Transition,
} from '../../../src/health/state';

/** The modelled path: what happens to each probe, and the other traffic of the interface. */
export interface PathModel {
  /**
   * RTT of the answer in ms, or null when the probe or its answer is lost, or an ICMP error
   * about the probe arriving `afterMs` later (it is received through the interface).
   */
  probe(target: string, sentAt: number): number | null | (Refusal & { afterMs: number });
  /** Packets (other than probes and their answers) sent and received in the tick ending at `at` (virtual ms). */
  traffic?(at: number): { tx: number; rx: number };
  /** Times the monitor does not run, virtual ms, [from, to). */
  stalls?: { from: number; to: number }[];
}

export interface SimResult {
  health: HealthState;
  /** State changes, each with its virtual time `at` in ms. */
  changes: (Transition & { at: number })[];
  /** Probes sent per target. */
  probes: Map<string, number>;
}

/** Runs for `durationMs` from virtual time 0 (ms), or from `from.at` with `from.health` to continue an earlier run. */
export function simulate(t: Thresholds, path: PathModel, durationMs: number, from?: { health: HealthState; at: number }): SimResult {
  let h = from?.health ?? initialHealth(0);
  let now = from?.at ?? 0;
  const end = now + durationMs;
  const changes: SimResult['changes'] = [];
  const probes = new Map<string, number>();
  // Answers and errors arriving, and judgements due at a burst round's RTO (id -1).
  const pending: { at: number; id: number; rttMs: number; refusal?: Refusal }[] = [];
  // Continuing a run: probe ids and rounds go on from the earlier ones.
  let id = h.probes.reduce((m, p) => Math.max(m, p.id + 1), 0);
  let round = h.probes.reduce((m, p) => Math.max(m, p.round + 1), 0);
  let nextSteady = now;
  let lastBurst = -Infinity;
  let wantBurst = false;
  let rx = 0;
  let tx = 0;
  let sentTotal = 0;
  let refusals = 0;
  const apply = (at: number) => {
    const step = evaluate(h, at, t);
    h = step.health;
    wantBurst = step.burst;
    if (step.change) changes.push({ ...step.change, at });
  };
  const send = (at: number, burst: boolean) => {
    const r = round++;
    if (burst) pending.push({ at: at + rtoMs(h, t) + 1, id: -1, rttMs: 0 });
    for (const target of t.targets) {
      const pid = id++;
      h = probeSent(h, { id: pid, round: r, target, sentAt: at, burst });
      probes.set(target, (probes.get(target) ?? 0) + 1);
      tx++;
      sentTotal++;
      const rtt = path.probe(target, at);
      if (typeof rtt === 'number') pending.push({ at: at + rtt, id: pid, rttMs: rtt });
      else if (rtt !== null) pending.push({ at: at + rtt.afterMs, id: pid, rttMs: rtt.afterMs, refusal: { words: rtt.words, ...(rtt.from && { from: rtt.from }) } });
    }
  };
  const stalled = (at: number) => (path.stalls ?? []).some((s) => at >= s.from && at < s.to);
  /** Answers and judgements due by `until`, each at its time, or at `readAt` when the monitor stalled then. */
  const deliver = (until: number, readAt?: number) => {
    pending.sort((a, b) => a.at - b.at);
    while (pending.length > 0 && pending[0].at <= until) {
      const a = pending.shift()!;
      const at = readAt ?? a.at;
      h = monitorRan(h, at, TICK_MS);
      if (a.id < 0) {
        apply(at);
        continue;
      }
      rx++;
      if (a.refusal) {
        refusals++;
        h = probeFailed(h, { id: a.id, at, error: `${a.refusal.words} (from ${a.refusal.from})`, refusal: a.refusal });
      } else if (a.rttMs <= 8_000) h = probeAnswered(h, { id: a.id, at, rttMs: a.rttMs + (at - a.at) });
      apply(at);
    }
  };
  let wasStalled = false;
  for (; now < end; now += TICK_MS) {
    if (stalled(now)) {
      wasStalled = true;
      continue;
    }
    const resumed = wasStalled;
    wasStalled = false;
    if (!resumed) deliver(now);
    h = monitorRan(h, now, TICK_MS);
    const other = path.traffic?.(now) ?? { tx: 0, rx: 0 };
    tx += other.tx;
    rx += other.rx;
    h = trafficSample(h, { at: now, rxPackets: rx, txPackets: tx, probes: sentTotal, refusals });
    let sent = true;
    if (now >= nextSteady) {
      // As the monitor: after a stall the steady rounds keep their rhythm, they do not catch up in a rush.
      nextSteady = Math.max(nextSteady + t.intervalMs, now + t.intervalMs / 2);
      send(now, false);
    } else if (wantBurst && now - lastBurst >= burstSpacingMs(h) - TICK_MS / 2) {
      lastBurst = now;
      send(now, true);
    } else sent = false;
    apply(now);
    if (!sent && wantBurst && h.suspect?.stall && lastBurst < h.suspect.since) {
      lastBurst = now;
      send(now, true);
    }
    if (resumed) deliver(now, now);
  }
  return { health: h, changes, probes };
}

/**
 * A per-source ICMP rate limit at the target as the kernel's icmp_ratelimit or nft `limit rate`
 * does it: a token bucket of `perSecond` tokens a second holding at most `burst`. The returned function says
 * whether a packet at `at` (virtual ms, non-decreasing) passes.
 */
export function tokenBucket(perSecond: number, burst: number): (at: number) => boolean {
  let tokens = burst;
  let last = 0;
  return (at) => {
    tokens = Math.min(burst, tokens + ((at - last) * perSecond) / 1000);
    last = at;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}
