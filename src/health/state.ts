// Per-uplink health judgement: pure, fed with probe events and the uplink's packet counters
// (see docs/health.md for the arithmetic). Time scales:
//   - steady state: one probe round (one probe per target) every `interval` (1 s);
//   - suspicion: nothing answered within the retransmission timeout (RFC 6298 style, floor
//     `timeout`), or a busy interface stops receiving while packets still leave (traffic stall);
//     a suspicion asks the monitor for a short burst of probe rounds (BURST_MS apart; a stall,
//     itself strong evidence, STALL_BURST_MS apart with the first one at once);
//   - down: a suspicion confirmed: `down_after` burst rounds unanswered AND either the interface
//     received nothing while traffic left (fast: about 0.55 s) or nothing at all answered for
//     the silence window (max(SILENT_MIN_MS, 2 x slowest recent RTT), idle links), or the targets
//     stayed silent for the dead window even though other packets arrive (DEAD_MIN_MS);
//   - refused: the path answers our probes with ICMP errors (destination unreachable, time
//     exceeded; for TCP probes a connect failing at once with EHOSTUNREACH/ENETUNREACH): such a
//     probe fails at once, and `down_after` failed rounds with at least one refusal are down
//     without waiting for silence (the errors are packets received, not a sign of life);
//   - any answer, however late (up to LATE_MS after its probe), is proof of life: it ends a suspicion;
//   - time the monitor itself did not run (its event loop blocked, the machine or VM paused) is no
//     evidence: it counts neither towards a probe's RTO nor towards silence, since answers that came
//     meanwhile may still wait unread (monitorRan); a step of the system clock never reaches here,
//     the monitor's clock is the monotonic one (system/clock.ts);
//   - up again on a rate: `up_after` good rounds among the last `up_after + 2`, the latest good.
import type { MonitorConfig } from '../config/types';
import type { HealthVerdict } from '../model/facts';

/** The part of MonitorConfig the judgement reads. */
export type Thresholds = Pick<
  MonitorConfig,
  'targets' | 'intervalMs' | 'timeoutMs' | 'quorum' | 'downAfter' | 'upAfter' | 'window' | 'degradedLossPct' | 'degradedRttMs'
>;

/** A degraded uplink is up again once loss and mean RTT are under this share of their limits. */
export const DEGRADED_EXIT_SHARE = 0.75;
/** Answers are awaited this long after their probe and still count as proof of life (a 3 s queue is slow, not dead). */
export const LATE_MS = 8_000;
/** Spacing of the confirmation burst's rounds after an unanswered probe (no other evidence yet). */
export const BURST_MS = 100;
/**
 * Spacing of the burst's rounds when the suspicion is a traffic stall: the stall is itself strong
 * evidence (packets leave, nothing comes back), so the confirmation goes as fast as the monitor
 * judges (one round per 50 ms tick), and its first round leaves in the tick that saw the stall.
 */
export const STALL_BURST_MS = 50;
/** A loop that runs this much (ms) later than its next tick was paused (monitorRan). */
export const PAUSE_SLACK_MS = 100;
/** Extra burst rounds beyond `down_after`, so that one rate-limited or lost round does not decide. */
export const BURST_EXTRA = 2;
/** Without a traffic verdict, a suspicion is confirmed after this much silence at least (idle links). */
export const SILENT_MIN_MS = 1_500;
/** Targets silent this long mean down even while other packets still arrive (e.g. the only target died). */
export const DEAD_MIN_MS = 6_000;
/** A traffic stall: packets left through the interface during this long and none came back. */
export const STALL_MS = 200;
/** Packets (other than probes) that must leave after a stall began for the fast verdict. */
export const STALL_TX = 2;
/**
 * A stall is a busy interface falling silent: it received at least this many packets per STALL_MS
 * before (20/s; probe answers alone are 2/s). Traffic that only leaves (a UDP export, a camera's
 * stream) never came back, so its silence says nothing, and suspecting it would burst all the time.
 */
export const STALL_RX_EXPECTED = 4;
/** Packets the interface may receive during a confirmed stall (a neighbour's ARP request or reply). */
export const RX_ALLOWANCE = 1;
/**
 * During a confirmed stall the interface may also receive this share of what it received before
 * (per second, over BASELINE_MS): a path dead in one direction still delivers the far end's
 * retransmissions, a few packets a second, while a saturated path keeps delivering ACKs at its rate.
 */
export const RX_BASELINE_SHARE = 0.1;
const BASELINE_MS = 1_000;
/** Traffic samples kept (at 50 ms per sample, 3 s). */
const TRAFFIC_SAMPLES = 60;

/** One probe: sent, then answered (at any time up to LATE_MS), failed with an error, or never answered. */
export interface ProbeRecord {
  /** The monitor's probe number, unique per uplink. */
  id: number;
  /** Probes of one round share it; rounds count up. */
  round: number;
  target: string;
  /** When it was sent, epoch ms (the monitor's clock). */
  sentAt: number;
  /** A confirmation burst's probe rather than a steady-state one. */
  burst: boolean;
  /** When its answer came, epoch ms; absent while unanswered. */
  answeredAt?: number;
  rttMs?: number;
  /** Why the probe failed at once: "host unreachable (from 198.51.100.1)". */
  error?: string;
  /** The failure was the path refusing the probe (an ICMP error about it): see Refusal. */
  refusal?: Refusal;
}

/**
 * The path refused a probe: an ICMP destination unreachable (any code) or time exceeded quoting
 * it (RFC 792), or a TCP connect failing at once with EHOSTUNREACH/ENETUNREACH (the kernel's
 * mapping of those ICMP errors, icmp_err_convert in net/ipv4/icmp.c). Positive evidence that the
 * path is broken at or beyond `from`.
 */
export interface Refusal {
  /** Plain words of the error: "network unreachable", "host prohibited", "time exceeded". */
  words: string;
  /** The router that sent the error; absent when the socket does not say (TCP connect errors). */
  from?: string;
}

/** Cumulative packet counters of the uplink's interface (/proc/net/dev), and the probes sent by then. */
export interface TrafficSample {
  /** When it was read, epoch ms (the monitor's clock). */
  at: number;
  rxPackets: number;
  txPackets: number;
  /** Probes the monitor had sent through this uplink up to `at` (cumulative). */
  probes: number;
  /**
   * ICMP errors about our probes received through this uplink up to `at` (cumulative; 0 when
   * absent). They are subtracted from `rxPackets`: an error about a probe is not a sign of life.
   */
  refusals?: number;
}

export interface Suspicion {
  /** When the suspicion began, epoch ms (the monitor's clock). */
  since: number;
  /** Plain words: why the uplink is being checked in a burst. */
  cause: string;
  /** The suspicion is a traffic stall (not an unanswered probe): its burst is spaced STALL_BURST_MS. */
  stall?: boolean;
  /** The interface's counters when the suspicion began (the last sample at or before `since`). */
  base?: TrafficSample;
  /** Packets received per second in the BASELINE_MS before the suspicion; 0 when unknown. */
  rxPerSecond?: number;
}

/** A time the monitor did not run, epoch ms (the monitor's clock): from when it was due to when it ran. */
export interface Pause {
  from: number;
  to: number;
}

export interface HealthState {
  state: HealthVerdict;
  /** When `state` was entered, epoch ms (the monitor's clock). */
  since: number;
  /** Why the uplink is in `state`, in plain words (status shows it beside RTT and loss). */
  reason: string;
  /** Probes of the last window + LATE_MS, oldest first. */
  probes: ProbeRecord[];
  /** Smoothed RTT and its variation (RFC 6298 2.2/2.3), ms; null before the first answer. */
  srttMs: number | null;
  rttvarMs: number;
  /** When the last answer came, epoch ms; null before the first. */
  lastAnswerAt: number | null;
  suspect: Suspicion | null;
  traffic: TrafficSample[];
  /** Times the monitor did not run, within the probes' horizon, oldest first. */
  pauses: Pause[];
  /** When the monitor's loop last ran for this uplink (monitorRan), epoch ms; null before. */
  lastRunAt: number | null;
  lastError: string | null;
}

export interface Transition {
  from: HealthVerdict;
  to: HealthVerdict;
  /** Plain words for logs and hooks. */
  reason: string;
  /**
   * Down only: the interface received (almost) nothing while the suspicion was confirmed, so no
   * connection through it is receiving either: its conntrack entries may be cleared. False when
   * only the targets fell silent (other packets still arrive) or no counters were read.
   */
  pathSilent?: boolean;
  /** Down only: the interface's received-packet counter at the verdict (to see later whether it receives again). */
  rxPackets?: number;
}

export interface Step {
  health: HealthState;
  /** Present when the state changed. */
  change?: Transition;
  /** True while a suspicion wants more burst rounds (the monitor spaces them BURST_MS apart). */
  burst: boolean;
}

export interface TargetStats {
  target: string;
  /** Lost probes in the window, percent; null before any probe was resolved. */
  lossPct: number | null;
  rttMs: number | null;
  /** Set when this target loses far more than the best one: the target limits or drops probes, not the path. */
  note?: string;
}

export interface HealthStats {
  state: HealthVerdict;
  /** When `state` was entered, epoch ms. */
  since: number;
  /** Why the uplink is in this state. */
  reason: string;
  /** Mean RTT of the answers in the window (late ones included), ms; null without answers. */
  rttMs: number | null;
  /** Mean absolute difference of consecutive RTTs per target, ms; null with fewer than two answers of a target. */
  jitterMs: number | null;
  /** Loss of the path in the window, percent: the best target's loss (a target that rate-limits does not count against the path). */
  lossPct: number | null;
  targets: TargetStats[];
  /** Present while a suspicion is being checked. */
  suspect: string | null;
  lastError: string | null;
}

/** The state of an uplink not probed yet: `unknown` since `at` (epoch ms), no probes, no RTT estimate. */
export function initialHealth(at: number): HealthState {
  return {
    state: 'unknown', since: at, reason: 'not probed yet', probes: [], srttMs: null, rttvarMs: 0,
    lastAnswerAt: null, suspect: null, traffic: [], pauses: [], lastRunAt: null, lastError: null,
  };
}

/**
 * The monitor's loop for this uplink runs at `at` (epoch ms: a tick, an answer, an RTO judgement), its ticks `tickMs`
 * apart. A run more than PAUSE_SLACK_MS later than the next tick was due ends a pause (its event loop was blocked, the
 * machine or VM paused; on a wall clock, also a forward step): from then to `at` is left out of every RTO and silence measured
 * across it, since answers that came meanwhile may still wait unread. Returns a new state; `h` is not changed.
 */
export function monitorRan(h: HealthState, at: number, tickMs: number): HealthState {
  const last = h.lastRunAt;
  if (last !== null && at <= last) return h;
  const pauses = last !== null && at - last > tickMs + PAUSE_SLACK_MS ? [...h.pauses, { from: last + tickMs, to: at }] : h.pauses;
  return { ...h, pauses, lastRunAt: at };
}

/** Ms from `from` to `to` during which the monitor ran (pauses left out). */
function aliveMs(h: HealthState, from: number, to: number): number {
  let ms = to - from;
  for (const p of h.pauses) ms -= Math.max(0, Math.min(to, p.to) - Math.max(from, p.from));
  return ms;
}

/** Probe `p` is past the RTO at `at`: `rto` ms of the monitor's running time went by since it was sent. */
function pastRto(h: HealthState, p: ProbeRecord, at: number, rto: number): boolean {
  return aliveMs(h, p.sentAt, at) >= rto;
}

/** Records a probe sent (id, round, target, `sentAt` epoch ms); returns a new state, `h` is not changed. */
export function probeSent(h: HealthState, p: Omit<ProbeRecord, 'answeredAt' | 'rttMs' | 'error'>): HealthState {
  return { ...h, probes: [...h.probes, { ...p }] };
}

/**
 * An answer to probe `id`, on time or late. It is proof of life: it ends a suspicion. The RTT
 * feeds the smoothed RTT (RFC 6298: alpha 1/8, beta 1/4); without `rttMs` (a probe the kernel may
 * have retransmitted, RFC 6298 §3) there is no sample. `at` is epoch ms, `rttMs` ms. Unknown ids
 * (pruned probes) are ignored.
 */
export function probeAnswered(h: HealthState, a: { id: number; at: number; rttMs?: number }): HealthState {
  const i = h.probes.findIndex((p) => p.id === a.id);
  if (i < 0 || h.probes[i].answeredAt !== undefined) return h;
  const probes = [...h.probes];
  if (a.rttMs === undefined) {
    probes[i] = { ...probes[i], answeredAt: a.at };
    return { ...h, probes, lastAnswerAt: Math.max(h.lastAnswerAt ?? a.at, a.at), suspect: null };
  }
  if (aliveMs(h, probes[i].sentAt, a.at) < a.at - probes[i].sentAt) {
    // The monitor paused while it was out: the RTT holds the pause (and the answer may have waited unread), no sample.
    probes[i] = { ...probes[i], answeredAt: a.at };
    return { ...h, probes, lastAnswerAt: Math.max(h.lastAnswerAt ?? a.at, a.at), suspect: null };
  }
  probes[i] = { ...probes[i], answeredAt: a.at, rttMs: a.rttMs };
  const r = a.rttMs;
  const srttMs = h.srttMs === null ? r : 0.875 * h.srttMs + 0.125 * r;
  const rttvarMs = h.srttMs === null ? r / 2 : 0.75 * h.rttvarMs + 0.25 * Math.abs(h.srttMs - r);
  return { ...h, probes, srttMs, rttvarMs, lastAnswerAt: Math.max(h.lastAnswerAt ?? a.at, a.at), suspect: null };
}

/**
 * Probe `id` failed at once (an ICMP error quoting it, a socket error): it is lost, and its round
 * counts as unanswered without waiting for the RTO. With `refusal`, the path refused it (see Refusal). `at`: epoch ms.
 */
export function probeFailed(h: HealthState, f: { id: number; at: number; error: string; refusal?: Refusal }): HealthState {
  const i = h.probes.findIndex((p) => p.id === f.id);
  if (i < 0 || h.probes[i].answeredAt !== undefined) return h;
  const probes = [...h.probes];
  probes[i] = { ...probes[i], error: f.error, ...(f.refusal && { refusal: f.refusal }) };
  return { ...h, probes, lastError: `${probes[i].target} ${f.error}` };
}

/** The interface's counters now; a sample older than the last is ignored. */
export function trafficSample(h: HealthState, s: TrafficSample): HealthState {
  const last = h.traffic[h.traffic.length - 1];
  if (last && s.at < last.at) return h;
  // Counters that went backwards (the device was created again) start a new series.
  const series = last && (s.rxPackets < last.rxPackets || s.txPackets < last.txPackets) ? [] : h.traffic;
  return { ...h, traffic: [...series, s].slice(-TRAFFIC_SAMPLES) };
}

/** How far apart the burst rounds of the current suspicion go, ms. */
export function burstSpacingMs(h: HealthState): number {
  return h.suspect?.stall ? STALL_BURST_MS : BURST_MS;
}

/** Retransmission timeout: an answer later than this makes the uplink suspect (but still counts if it comes). */
export function rtoMs(h: HealthState, t: Pick<Thresholds, 'timeoutMs'>): number {
  const est = h.srttMs === null ? 0 : h.srttMs + 4 * h.rttvarMs;
  return Math.min(LATE_MS, Math.max(t.timeoutMs, est));
}

/** The judgement at time `at` (epoch ms) under thresholds `t`: state changes, and whether a burst round is wanted. */
export function evaluate(h0: HealthState, at: number, t: Thresholds): Step {
  const horizon = at - Math.max(t.window * t.intervalMs, (t.upAfter + BURST_EXTRA + 1) * t.intervalMs) - LATE_MS;
  let h: HealthState = h0.probes.length > 0 && h0.probes[0].sentAt < horizon ? { ...h0, probes: h0.probes.filter((p) => p.sentAt >= horizon) } : h0;
  if (h.pauses.length > 0 && h.pauses[0].to < horizon) h = { ...h, pauses: h.pauses.filter((p) => p.to >= horizon) };
  const rto = rtoMs(h, t);

  if (h.state === 'down') return judgeRecovery(h, at, t, rto);
  if (h.state === 'unknown' && h.lastAnswerAt !== null) {
    return { ...enter(h, 'up', at, `probes answered (rtt ${ms(h.srttMs ?? 0)})`), burst: false };
  }

  if (!h.suspect) {
    const suspect = suspicion(h, at, rto);
    if (!suspect) return judgeQuality(h, at, t);
    h = { ...h, suspect: { ...suspect, ...baseSample(h.traffic, suspect.since) } };
  }
  const suspect = h.suspect as Suspicion;
  const since = suspect.since;
  const burstRounds = new Set(h.probes.filter((p) => p.burst && p.sentAt >= since).map((p) => p.round)).size;
  const wantBurst = burstRounds < t.downAfter + BURST_EXTRA;
  // Rounds sent since the suspicion began that nobody answered within the RTO (or that failed).
  const rounds = new Map<number, ProbeRecord[]>();
  for (const p of h.probes) if (p.sentAt >= since) rounds.set(p.round, [...(rounds.get(p.round) ?? []), p]);
  let expired = 0;
  for (const probes of rounds.values()) {
    if (probes.every((p) => p.answeredAt === undefined && (p.error !== undefined || pastRto(h, p, at, rto)))) expired++;
  }
  const step = (health: HealthState): Step => ({ health, burst: wantBurst });
  if (expired < t.downAfter) return step(h);

  const traffic = trafficSince(h.traffic, suspect.base);
  const silentMs = Math.max(SILENT_MIN_MS, 2 * slowestRtt(h));
  const deadMs = Math.max(DEAD_MIN_MS, 3 * slowestRtt(h));
  const quietFor = aliveMs(h, Math.max(since, h.lastAnswerAt ?? since), at);
  const failed = h.probes.filter((p) => p.sentAt >= since && p.error !== undefined).pop();
  const errorNote = failed ? ` (${failed.target} ${failed.error})` : '';
  const probeWords = `${expired} probe rounds to ${t.targets.join(', ')} unanswered within ${ms(rto)}${errorNote}`;
  const rxAllowed = traffic === null ? 0 : Math.max(RX_ALLOWANCE, RX_BASELINE_SHARE * (suspect.rxPerSecond ?? 0) * (traffic.ms / 1000));
  const silent = traffic !== null && traffic.rx <= rxAllowed;
  // Refusals outrank the traffic signal: whatever else still arrives, the path answers that it is broken.
  const refused = h.probes.filter((p) => p.sentAt >= since && p.refusal !== undefined);
  if (refused.length > 0) {
    // Routers limit their errors per source (Linux: a burst of about 6, then 1/s): some targets may get none.
    const refusedTargets = new Set(refused.map((p) => p.target));
    const unrefused = t.targets.filter((x) => !refusedTargets.has(x));
    const rest = unrefused.length > 0 ? `; no answer from ${unrefused.join(', ')}` : '';
    return down(`${refusalWords(refused)}${rest} (${expired} probe rounds failed or unanswered within ${ms(rto)})`);
  }
  if (silent && traffic.otherTx >= STALL_TX) {
    return down(`${probeWords}; ${traffic.otherTx} packets left through the interface in ${ms(traffic.ms)} and ${traffic.rx === 0 ? 'none' : `only ${traffic.rx}`} came back`);
  }
  if (quietFor >= silentMs && (traffic === null || silent)) {
    return down(`${probeWords}; nothing answered for ${ms(quietFor)}`);
  }
  if (quietFor >= deadMs) {
    const rx = traffic ? `, although the interface received ${traffic.rx} packets (are the targets themselves down?)` : '';
    return down(`no target answered for ${ms(quietFor)}${rx}`);
  }
  return step(h);

  function down(reason: string): Step {
    const e = enter({ ...h, suspect: null }, 'down', at, reason);
    const last = h.traffic[h.traffic.length - 1];
    return { ...e, change: { ...e.change, pathSilent: silent, ...(last && { rxPackets: last.rxPackets }) }, burst: false };
  }
}

/** "198.51.100.1 answers 'network unreachable' for 192.0.2.80, 192.0.2.53", one clause per router and error. */
function refusalWords(refused: ProbeRecord[]): string {
  const groups = new Map<string, { r: Refusal; targets: Set<string> }>();
  for (const p of refused) {
    const r = p.refusal as Refusal;
    const key = `${r.from ?? ''} ${r.words}`;
    const g = groups.get(key) ?? { r, targets: new Set<string>() };
    g.targets.add(p.target);
    groups.set(key, g);
  }
  return [...groups.values()]
    .map(({ r, targets }) => {
      const list = [...targets].join(', ');
      return r.from ? `${r.from} answers '${r.words}' for ${list}` : `connecting to ${list} fails at once with '${r.words}'`;
    })
    .join('; ');
}

/** Why the uplink is suspect now, or null: an unanswered probe past the RTO, or a traffic stall. */
function suspicion(h: HealthState, at: number, rto: number): Suspicion | null {
  const lastAnswer = h.lastAnswerAt ?? -Infinity;
  const overdue = h.probes.find((p) => p.sentAt > lastAnswer && p.answeredAt === undefined && (p.error !== undefined || pastRto(h, p, at, rto)));
  if (overdue) {
    return { since: overdue.sentAt, cause: `${overdue.target} ${overdue.error ?? `not answered within ${ms(rto)}`}` };
  }
  const samples = h.traffic;
  const last = samples[samples.length - 1];
  if (!last || at - last.at > 2 * STALL_MS) return null;
  // The earliest sample within STALL_MS before the last: nothing received since, packets sent.
  const first = samples.find((s) => s.at >= last.at - STALL_MS);
  if (!first || last.at - first.at < STALL_MS * 0.75) return null;
  const rx = received(first, last);
  const otherTx = last.txPackets - first.txPackets - (last.probes - first.probes);
  const { rxPerSecond } = baseSample(samples, first.at);
  const rxAllowed = Math.max(RX_ALLOWANCE, RX_BASELINE_SHARE * (rxPerSecond ?? 0) * ((last.at - first.at) / 1000));
  // One packet leaving is enough: a TCP sender backs off exponentially once its ACKs stop.
  const wasBusy = (rxPerSecond ?? 0) * ((last.at - first.at) / 1000) >= STALL_RX_EXPECTED;
  if (rx <= rxAllowed && wasBusy && otherTx > 0 && lastAnswer < first.at) {
    return {
      since: first.at,
      stall: true,
      cause: `${otherTx} packets left through the interface in ${ms(last.at - first.at)} and ${rx === 0 ? 'none' : rx} came back (it received ${Math.round(rxPerSecond ?? 0)}/s before)`,
    };
  }
  return null;
}

/** The last sample at or before `since` (within STALL_MS after it when there is none before), and the receive rate before it. */
function baseSample(samples: TrafficSample[], since: number): Pick<Suspicion, 'base' | 'rxPerSecond'> {
  let base: TrafficSample | undefined;
  for (const s of samples) if (s.at <= since) base = s;
  base ??= samples.find((s) => s.at <= since + STALL_MS);
  if (!base) return {};
  const b = base;
  const earlier = samples.find((s) => s.at >= b.at - BASELINE_MS && s.at < b.at && s.rxPackets <= b.rxPackets);
  const rxPerSecond = earlier ? (received(earlier, b) * 1000) / (b.at - earlier.at) : 0;
  return { base, rxPerSecond };
}

/** Packets received, and sent other than probes, since `base`, over `ms` (null without counters, or when they restarted). */
function trafficSince(samples: TrafficSample[], base: TrafficSample | undefined): { rx: number; otherTx: number; ms: number } | null {
  const last = samples[samples.length - 1];
  if (!last || !base || last.at <= base.at || last.rxPackets < base.rxPackets || last.txPackets < base.txPackets) return null;
  return { rx: received(base, last), otherTx: last.txPackets - base.txPackets - (last.probes - base.probes), ms: last.at - base.at };
}

/** Packets received from `a` to `b` other than ICMP errors about our probes. */
function received(a: TrafficSample, b: TrafficSample): number {
  return Math.max(0, b.rxPackets - a.rxPackets - ((b.refusals ?? 0) - (a.refusals ?? 0)));
}

/** The slowest answer in the window (ms), 0 without answers: silence is judged on that time scale. */
function slowestRtt(h: HealthState): number {
  let max = 0;
  for (const p of h.probes) if (p.rttMs !== undefined && p.rttMs > max) max = p.rttMs;
  return max;
}

function judgeRecovery(h: HealthState, at: number, t: Thresholds, rto: number): Step {
  const quorum = Math.max(1, Math.min(t.quorum, t.targets.length));
  // Steady rounds sent since the uplink went down, resolved: good (quorum answered, late or not) or failed (RTO passed).
  const byRound = new Map<number, ProbeRecord[]>();
  for (const p of h.probes) if (!p.burst && p.sentAt >= h.since) byRound.set(p.round, [...(byRound.get(p.round) ?? []), p]);
  const resolved: boolean[] = [];
  for (const probes of [...byRound.values()].sort((a, b) => a[0].round - b[0].round)) {
    const good = probes.filter((p) => p.answeredAt !== undefined).length >= quorum;
    if (good) resolved.push(true);
    else if (probes.every((p) => p.error !== undefined || pastRto(h, p, at, rto))) resolved.push(false);
  }
  const recent = resolved.slice(-(t.upAfter + BURST_EXTRA));
  const good = recent.filter(Boolean).length;
  if (good >= t.upAfter && recent[recent.length - 1]) {
    const rtt = h.srttMs === null ? '' : ` (rtt ${ms(h.srttMs)})`;
    // The loss and RTT window restarts here: the rounds lost (or answered late) while the uplink
    // was down measure the outage, not the recovered path, and must not make it `degraded`.
    return { ...enter({ ...h, probes: [] }, 'up', at, `${good} of the last ${recent.length} probe rounds answered${rtt}`), burst: false };
  }
  return { health: h, burst: false };
}

function judgeQuality(h: HealthState, at: number, t: Thresholds): Step {
  const none: Step = { health: h, burst: false };
  const stats = windowStats(h, at, t);
  // A half-empty window says too little (one lost probe out of two is not 50 % loss).
  if (stats.resolvedRounds < Math.ceil(t.window / 2)) return none;
  const loss = stats.lossPct ?? 0;
  const rttMs = stats.rttMs;
  const limits = `over the last ${stats.resolvedRounds} rounds`;
  if (h.state === 'up') {
    if (loss > t.degradedLossPct) {
      return { ...enter(h, 'degraded', at, `loss ${pct(loss)} ${limits} (limit ${pct(t.degradedLossPct)})`), burst: false };
    }
    if (rttMs !== null && rttMs > t.degradedRttMs) {
      return { ...enter(h, 'degraded', at, `mean rtt ${ms(rttMs)} ${limits} (limit ${ms(t.degradedRttMs)})`), burst: false };
    }
    return none;
  }
  if (h.state !== 'degraded') return none;
  const lossExit = t.degradedLossPct * DEGRADED_EXIT_SHARE;
  const rttExit = t.degradedRttMs * DEGRADED_EXIT_SHARE;
  if (loss <= lossExit && (rttMs === null || rttMs <= rttExit)) {
    const rttNote = rttMs === null ? '' : ` and mean rtt ${ms(rttMs)}`;
    return { ...enter(h, 'up', at, `loss ${pct(loss)}${rttNote} ${limits}, back under ${pct(lossExit)} and ${ms(rttExit)}`), burst: false };
  }
  return none;
}

interface WindowStats {
  resolvedRounds: number;
  lossPct: number | null;
  rttMs: number | null;
  jitterMs: number | null;
  targets: TargetStats[];
}

/**
 * Loss and RTT over the steady rounds of the last `window` rounds. A probe is lost once LATE_MS
 * passed without an answer (or it failed); a late answer is not a loss. The path's loss is the
 * best target's: a target that drops some probes (rate limiting) while another answers all of
 * them shows the target's limit, not the path's.
 */
function windowStats(h: HealthState, at: number, t: Thresholds): WindowStats {
  const from = at - t.window * t.intervalMs - LATE_MS;
  // `error`: why the target's latest lost probe failed before anything came back (e.g. its name cannot be resolved).
  const per = new Map<string, { sent: number; lost: number; rtts: number[]; refusal?: Refusal; error?: string }>();
  const rounds = new Set<number>();
  for (const target of t.targets) per.set(target, { sent: 0, lost: 0, rtts: [] });
  for (const p of h.probes) {
    if (p.burst || p.sentAt < from) continue;
    const answered = p.answeredAt !== undefined;
    const lost = !answered && (p.error !== undefined || p.sentAt + LATE_MS <= at);
    if (!answered && !lost) continue;
    const s = per.get(p.target) ?? { sent: 0, lost: 0, rtts: [] };
    per.set(p.target, s);
    s.sent++;
    if (lost) s.lost++;
    if (p.refusal) s.refusal = p.refusal;
    if (lost) s.error = p.refusal ? undefined : p.error;
    if (p.rttMs !== undefined) s.rtts.push(p.rttMs);
    rounds.add(p.round);
  }
  const targets: TargetStats[] = [];
  const refusals = new Map<string, Refusal>();
  const errors = new Map<string, string>();
  let best: number | null = null;
  let bestName = '';
  const all: number[] = [];
  let jitterSum = 0;
  let jitterN = 0;
  for (const [target, s] of per) {
    const lossPct = s.sent === 0 ? null : (100 * s.lost) / s.sent;
    targets.push({ target, lossPct, rttMs: s.rtts.length ? mean(s.rtts) : null });
    if (s.refusal) refusals.set(target, s.refusal);
    if (s.error) errors.set(target, s.error);
    if (lossPct !== null && (best === null || lossPct < best)) {
      best = lossPct;
      bestName = target;
    }
    all.push(...s.rtts);
    for (let i = 1; i < s.rtts.length; i++) {
      jitterSum += Math.abs(s.rtts[i] - s.rtts[i - 1]);
      jitterN++;
    }
  }
  for (const ts of targets) {
    if (best === null || ts.lossPct === null || ts.target === bestName) continue;
    const r = refusals.get(ts.target);
    const error = errors.get(ts.target);
    if (r && ts.lossPct >= best + 20) {
      ts.note = `${r.from ?? 'the path'} answers '${r.words}' for it while ${bestName} answers: the way to this target is broken, not the uplink`;
    } else if (error && ts.lossPct >= best + 20) {
      // The probe never left (the name cannot be resolved, the socket refused it): say so, not "does not answer".
      ts.note = `${error}: not probed while ${bestName} answers; this target, not the uplink, needs fixing`;
    } else if (ts.lossPct >= best + 20 && ts.lossPct < 100) {
      ts.note = `answers ${pct(100 - ts.lossPct)} while ${bestName} answers ${pct(100 - best)}: this target limits or drops probes, the path does not`;
    } else if (ts.lossPct === 100 && best < 100) {
      ts.note = `does not answer while ${bestName} does: this target is down or blocks probes`;
    }
  }
  return { resolvedRounds: rounds.size, lossPct: best, rttMs: all.length ? mean(all) : null, jitterMs: jitterN ? jitterSum / jitterN : null, targets };
}

/** Back to unknown at `at` (epoch ms), e.g. when the uplink lost its address and is no longer probed. */
export function resetHealth(h: HealthState, at: number, reason: string): Step {
  const fresh = { ...initialHealth(at), lastError: h.lastError, reason };
  if (h.state === 'unknown') return { health: { ...fresh, since: h.since }, burst: false };
  return { health: fresh, change: { from: h.state, to: 'unknown', reason }, burst: false };
}

/**
 * The figures shown for an uplink at `at` (epoch ms): its state and reason, RTT and jitter in ms and loss in percent
 * over the last `t` window (windowStats(): the best target's loss), per-target figures, the suspicion being checked.
 */
export function healthStats(h: HealthState, at: number, t: Thresholds): HealthStats {
  const w = windowStats(h, at, t);
  return {
    state: h.state,
    since: h.since,
    reason: h.reason,
    rttMs: w.rttMs,
    jitterMs: w.jitterMs,
    lossPct: w.lossPct,
    targets: w.targets,
    suspect: h.suspect ? h.suspect.cause : null,
    lastError: h.lastError,
  };
}

function enter(h: HealthState, to: HealthVerdict, at: number, reason: string): { health: HealthState; change: Transition } {
  return { health: { ...h, state: to, since: at, reason }, change: { from: h.state, to, reason } };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function ms(value: number): string {
  return `${Math.round(value * 10) / 10} ms`;
}

function pct(value: number): string {
  return `${Math.round(value * 10) / 10}%`;
}
