// Per-uplink health state machine: pure, fed with probe rounds (see docs/health.md).
//   unknown --first good round--> up;        any --downAfter failed rounds in a row--> down
//   down --upAfter good rounds in a row--> up;   up <--> degraded on the rolling window's loss / mean RTT
// A round succeeds when `quorum` targets answered before the timeout. An answer that comes
// after the timeout ("late") proves the path still works: it ends a streak of failed rounds,
// so a saturated link with a long queue is not declared dead, but it still counts as lost.
import type { MonitorConfig } from '../config/types';
import type { HealthVerdict } from '../model/facts';

export interface ProbeResult {
  target: string;
  ok: boolean;
  /** Round-trip time of an answer, ms. */
  rttMs?: number;
  /** Why the probe failed, in a few words: "timeout", "host unreachable (from 198.51.100.1)". */
  error?: string;
}

/** One probe to each target, judged together at the timeout. */
export interface Round {
  /** When the round was judged (ms, the caller's clock). */
  at: number;
  results: ProbeResult[];
}

/** The part of MonitorConfig the state machine reads. */
export type Thresholds = Pick<
  MonitorConfig,
  'quorum' | 'downAfter' | 'upAfter' | 'window' | 'degradedLossPct' | 'degradedRttMs'
>;

/** A degraded uplink is up again once loss and mean RTT are under this share of their limits. */
export const DEGRADED_EXIT_SHARE = 0.75;

interface RttSample {
  target: string;
  rttMs: number;
}

interface RoundSummary {
  sent: number;
  lost: number;
  rtts: RttSample[];
}

export interface HealthState {
  state: HealthVerdict;
  /** When `state` was entered. */
  since: number;
  failStreak: number;
  goodStreak: number;
  /** The last `window` rounds, oldest first. */
  window: RoundSummary[];
  lastError: string | null;
}

export interface Transition {
  from: HealthVerdict;
  to: HealthVerdict;
  /** Plain words for logs and hooks. */
  reason: string;
}

export interface Step {
  health: HealthState;
  /** Present when the state changed. */
  change?: Transition;
}

export interface HealthStats {
  state: HealthVerdict;
  since: number;
  /** Mean RTT of the answers in the window, ms; null without answers. */
  rttMs: number | null;
  /** Mean absolute difference of consecutive RTTs per target, ms; null with fewer than two answers of a target. */
  jitterMs: number | null;
  /** Lost probes in the window, percent; null before the first round. */
  lossPct: number | null;
  lastError: string | null;
}

export function initialHealth(at: number): HealthState {
  return { state: 'unknown', since: at, failStreak: 0, goodStreak: 0, window: [], lastError: null };
}

export function observeRound(h: HealthState, round: Round, t: Thresholds): Step {
  const answered = round.results.filter((r) => r.ok);
  const quorum = Math.max(1, Math.min(t.quorum, round.results.length));
  const good = answered.length >= quorum;
  const failed = round.results.filter((r) => !r.ok);
  const summary: RoundSummary = {
    sent: round.results.length,
    lost: failed.length,
    rtts: answered.filter((r) => r.rttMs !== undefined).map((r) => ({ target: r.target, rttMs: r.rttMs as number })),
  };
  const next: HealthState = {
    ...h,
    failStreak: good ? 0 : h.failStreak + 1,
    goodStreak: good ? h.goodStreak + 1 : 0,
    window: [...h.window, summary].slice(-Math.max(1, t.window)),
    lastError: failed.length > 0 ? describeFailures(failed) : h.lastError,
  };

  if (next.failStreak >= t.downAfter && next.state !== 'down') {
    const quorumNote = answered.length > 0 ? `; ${answered.length} of ${round.results.length} answered, quorum ${quorum}` : '';
    const reason = `${next.failStreak} probe ${plural(next.failStreak, 'round')} in a row failed: ${describeFailures(failed)}${quorumNote}`;
    // The window restarts so that the outage does not count against the uplink once it is back.
    return enter({ ...next, window: [] }, 'down', round.at, reason);
  }
  if (next.state === 'unknown' && good) {
    return enter(next, 'up', round.at, `probes answered: ${describeResults(round.results)}`);
  }
  if (next.state === 'down') {
    if (next.goodStreak < t.upAfter) return { health: next };
    const recent = next.window.slice(-next.goodStreak);
    const rtt = meanRtt(recent);
    const rttNote = rtt === null ? '' : ` (mean rtt ${ms(rtt)})`;
    const reason = `${next.goodStreak} probe ${plural(next.goodStreak, 'round')} in a row succeeded${rttNote}`;
    return enter({ ...next, window: recent }, 'up', round.at, reason);
  }
  if (next.state === 'up' || next.state === 'degraded') return judgeQuality(next, round.at, t);
  return { health: next };
}

/** An answer that came after its round was judged: the path works, so a failure streak ends. */
export function observeLate(h: HealthState, answer: { target: string; rttMs: number }): HealthState {
  const last = h.window[h.window.length - 1];
  const window = last
    ? [...h.window.slice(0, -1), { ...last, rtts: [...last.rtts, { target: answer.target, rttMs: answer.rttMs }] }]
    : h.window;
  return { ...h, window, failStreak: 0 };
}

/** Back to unknown (e.g. the uplink lost its address and is no longer probed). */
export function resetHealth(h: HealthState, at: number, reason: string): Step {
  if (h.state === 'unknown') return { health: { ...initialHealth(h.since), lastError: h.lastError } };
  return { health: { ...initialHealth(at), lastError: h.lastError }, change: { from: h.state, to: 'unknown', reason } };
}

export function healthStats(h: HealthState): HealthStats {
  const sent = h.window.reduce((n, r) => n + r.sent, 0);
  const lost = h.window.reduce((n, r) => n + r.lost, 0);
  return {
    state: h.state,
    since: h.since,
    rttMs: meanRtt(h.window),
    jitterMs: jitter(h.window),
    lossPct: sent === 0 ? null : (100 * lost) / sent,
    lastError: h.lastError,
  };
}

function judgeQuality(h: HealthState, at: number, t: Thresholds): Step {
  // A half-empty window says too little (one lost probe out of two is not 50 % loss).
  if (h.window.length < Math.ceil(t.window / 2)) return { health: h };
  const { lossPct, rttMs } = healthStats(h);
  const loss = lossPct ?? 0;
  const limits = `over the last ${h.window.length} rounds`;
  if (h.state === 'up') {
    if (loss > t.degradedLossPct) {
      return enter(h, 'degraded', at, `loss ${pct(loss)} ${limits} (limit ${pct(t.degradedLossPct)})`);
    }
    if (rttMs !== null && rttMs > t.degradedRttMs) {
      return enter(h, 'degraded', at, `mean rtt ${ms(rttMs)} ${limits} (limit ${ms(t.degradedRttMs)})`);
    }
    return { health: h };
  }
  const lossExit = t.degradedLossPct * DEGRADED_EXIT_SHARE;
  const rttExit = t.degradedRttMs * DEGRADED_EXIT_SHARE;
  if (loss <= lossExit && (rttMs === null || rttMs <= rttExit)) {
    const rttNote = rttMs === null ? '' : ` and mean rtt ${ms(rttMs)}`;
    return enter(h, 'up', at, `loss ${pct(loss)}${rttNote} ${limits}, back under ${pct(lossExit)} and ${ms(rttExit)}`);
  }
  return { health: h };
}

function enter(h: HealthState, to: HealthVerdict, at: number, reason: string): Step {
  return { health: { ...h, state: to, since: at }, change: { from: h.state, to, reason } };
}

function meanRtt(window: RoundSummary[]): number | null {
  let sum = 0;
  let n = 0;
  for (const r of window) for (const s of r.rtts) {
    sum += s.rttMs;
    n++;
  }
  return n === 0 ? null : sum / n;
}

function jitter(window: RoundSummary[]): number | null {
  const previous = new Map<string, number>();
  let sum = 0;
  let n = 0;
  for (const r of window) for (const s of r.rtts) {
    const before = previous.get(s.target);
    if (before !== undefined) {
      sum += Math.abs(s.rttMs - before);
      n++;
    }
    previous.set(s.target, s.rttMs);
  }
  return n === 0 ? null : sum / n;
}

function describeFailures(failed: ProbeResult[]): string {
  return failed.length === 0 ? 'no targets' : failed.map((r) => `${r.target} ${r.error ?? 'failed'}`).join(', ');
}

function describeResults(results: ProbeResult[]): string {
  return results.map((r) => `${r.target} ${r.ok ? (r.rttMs === undefined ? 'ok' : ms(r.rttMs)) : r.error ?? 'failed'}`).join(', ');
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function ms(value: number): string {
  return `${Math.round(value * 10) / 10} ms`;
}

function pct(value: number): string {
  return `${Math.round(value * 10) / 10}%`;
}
