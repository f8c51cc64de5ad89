// HealthMonitor: probe rounds on timers for every uplink with a `monitor:`, one state machine
// (state.ts) per uplink, `change` events for the daemon. Wiring (src/daemon/run.ts):
//   const health = new HealthMonitor(config, planned.endpoint);   // PlannedUplinks, filled by the daemon after each cycle
//   Daemon gets `health` (verdicts() -> facts.health, 'change' -> replan, reconfigure on reload);
//   health.on('change', healthActions({ hooksDir: () => config.paths.hooksDir, log, afterReplan: () => daemon.whenIdle() }));
//   health.start(); ... health.stop();
import { EventEmitter } from 'node:events';
import dns from 'node:dns';
import type { Config, MonitorConfig } from '../config/types';
import { isIpv4 } from '../model/ipv4';
import type { Logger } from '../log';
import type { HealthVerdict } from '../model/facts';
import { monotonicNow, wallTime } from '../system/clock';
import { createProber, type ProbeSource, type ProbeTarget, type Prober } from './probers';
import {
  burstSpacingMs,
  evaluate,
  healthStats,
  initialHealth,
  monitorRan,
  LATE_MS,
  probeAnswered,
  probeFailed,
  probeSent,
  resetHealth,
  rtoMs,
  trafficSample,
  type HealthState,
  type HealthStats,
  type Step,
  type Suspicion,
} from './state';
import { readNetDev, type InterfaceCounters } from './traffic';

/** Where an uplink is right now (from the planner's UplinkStatus). */
export interface UplinkEndpoint {
  interface: string;
  /** Absent while the uplink has no address: it is not probed then. */
  address?: string;
  gateway?: string;
  /**
   * The link is down (administratively or no carrier): not probed then either. Probes sent meanwhile fail locally
   * ("network unreachable"), and judged once the link is back they would pull a working uplink out again.
   */
  linkDown?: boolean;
}

export type EndpointLookup = (uplink: string) => UplinkEndpoint | undefined;

export interface HealthChange {
  uplink: string;
  from: HealthVerdict;
  to: HealthVerdict;
  reason: string;
  stats: HealthStats;
  /** The endpoint probed when the change happened (for hooks and conntrack). */
  endpoint?: UplinkEndpoint;
  /** Down only: nothing came in through the interface while it was confirmed (state.ts Transition). */
  pathSilent?: boolean;
  /** Down only: the interface's received-packet counter at the verdict. */
  rxPackets?: number;
}

export interface MonitorOptions {
  /** Opens the sockets of one uplink; tests inject fakes. */
  createProber?: (method: MonitorConfig['method'], source: ProbeSource, port?: number) => Prober;
  /** Host name -> IPv4 address, for targets given as names. */
  resolve?: (name: string) => Promise<string>;
  /**
   * The clock every span is judged on (RTO, silence, when a round is due), epoch ms. Default: the monotonic clock
   * (system/clock.ts), so a step of the system clock neither stops probing nor reads as silence.
   */
  now?: () => number;
  /** The clock of the times handed out (HealthStats.since, log lines), epoch ms. Default: Date.now; `now` when only that is given. */
  wallNow?: () => number;
  /** Packet counters of an interface (default: /proc/net/dev); undefined when unknown. */
  counters?: (ifname: string) => InterfaceCounters | undefined;
  /** Debug lines of each suspicion and burst round (`event=health_suspect`, `health_burst`, `health_clear`, `health_paused`). */
  log?: Logger;
}

/** How often each uplink's loop reads its counters and judges (and may send a burst round). */
export const TICK_MS = 50;
/** Host-name targets are looked up again after this long. */
export const RESOLVE_TTL_MS = 300_000;
export const RESOLVE_RETRY_MS = 5_000;
/** A socket that failed to open is tried again after this long. */
export const REOPEN_MS = 1_000;
/**
 * A down uplink's socket is reopened this often while nothing answers: a socket bound to a device
 * that was deleted and created again (a PPP reconnect with the same address) would otherwise stay dead.
 */
export const REOPEN_DOWN_MS = 5_000;
/**
 * A down verdict is held back at most this long while the other uplinks probing the same targets
 * are checked: when they fail too, the cause is shared (the target itself died, a total outage) and
 * they all go down in the same moment, so the route never flaps (one removed, re-added as the last
 * resort a few ms later); as soon as a shared target answers through another uplink (one round
 * trip after asking), this path is dead and the verdict applies. Long enough for an idle sharer to
 * confirm its own down (SILENT_MIN_MS after its first unanswered probe).
 */
export const CORRELATION_HOLD_MS = 3_000;

export interface HealthMonitor {
  on(event: 'change', listener: (change: HealthChange) => void): this;
  emit(event: 'change', change: HealthChange): boolean;
}

/** What an uplink's probe loop needs from the monitor. */
interface LoopContext {
  endpoint: EndpointLookup;
  createProber: NonNullable<MonitorOptions['createProber']>;
  now: () => number;
  /** `at` of `now` as a wall-clock time (epoch ms). */
  wall: (at: number) => number;
  /** The address to probe, or why there is none yet. */
  target: (name: string) => ProbeTarget | string;
  emit: (change: HealthChange) => void;
  counters: (ifname: string) => InterfaceCounters | undefined;
  log?: Logger;
  /** True while `loop`'s down verdict must wait for the uplinks sharing its targets (HealthMonitor.holdDown); `at` epoch ms. */
  holdDown: (loop: UplinkLoop, at: number) => boolean;
  /** After `loop` went down: the held verdicts of the uplinks sharing its targets are judged again now (`at`, epoch ms). */
  releaseSharers: (loop: UplinkLoop, at: number) => void;
  /** A suspicion of `loop` began: the uplinks sharing its targets probe them now, so a down verdict need not wait for them. */
  suspected: (loop: UplinkLoop) => void;
}

interface NameEntry {
  ip?: string;
  error?: string;
  /** When to look the name up again, epoch ms (the monitor's clock). */
  refreshAt: number;
  pending?: Promise<unknown>;
}

/**
 * Probes every monitored uplink (those with `monitor.targets`) through its own interface and judges it with the
 * state machine in state.ts; emits `change` (HealthChange) when an uplink's verdict changes. Names among the targets
 * are resolved over IPv4 and looked up again later. Spans are judged on `options.now` (default: the monotonic clock); stats() and changes give wall-clock times.
 */
export class HealthMonitor extends EventEmitter {
  private loops: Map<string, UplinkLoop>;
  private running = false;
  private readonly names = new Map<string, NameEntry>();
  private readonly resolveName: NonNullable<MonitorOptions['resolve']>;
  private readonly ctx: LoopContext;

  constructor(config: Config, endpoints: EndpointLookup, options: MonitorOptions = {}) {
    super();
    this.resolveName = options.resolve ?? (async (name) => (await dns.promises.lookup(name, { family: 4 })).address);
    const now = options.now ?? monotonicNow;
    const wallNow = options.wallNow ?? options.now ?? Date.now;
    this.ctx = {
      endpoint: endpoints,
      createProber: options.createProber ?? createProber,
      now,
      wall: (at) => wallTime(at, now, wallNow),
      target: (name) => this.target(name, now()),
      emit: (change) => this.emit('change', change),
      counters: options.counters ?? sharedNetDev(now),
      log: options.log,
      holdDown: (loop, at) => this.holdDown(loop, at),
      releaseSharers: (loop, at) => {
        for (const other of this.sharers(loop)) if (other.held) other.judgeAgain(at);
      },
      suspected: (loop) => {
        for (const other of this.sharers(loop)) if (!other.health.suspect && other.health.state !== 'down') other.roundNow();
      },
    };
    this.loops = this.loopsFor(config, new Map());
  }

  /** Starts probing; the timers keep the process alive until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const loop of this.loops.values()) loop.start();
  }

  /** Stops every uplink's probe loop and timers; the last verdicts stay readable. start() resumes. */
  stop(): void {
    this.running = false;
    for (const loop of this.loops.values()) loop.stop();
  }

  /** Applies a reloaded config; uplinks whose monitor settings did not change keep their state. */
  reconfigure(config: Config): void {
    const old = this.loops;
    this.loops = this.loopsFor(config, old);
    for (const [name, loop] of old) {
      if (this.loops.get(name) !== loop) loop.stop();
    }
    if (this.running) for (const loop of this.loops.values()) loop.start();
  }

  /** Verdict per monitored uplink (for Facts.health); unmonitored uplinks are absent. */
  verdicts(): Record<string, HealthVerdict> {
    return Object.fromEntries([...this.loops].map(([name, loop]) => [name, loop.health.state]));
  }

  /** RTT and jitter (ms) and loss (percent) over the current window, per monitored uplink, for status and metrics. */
  stats(): Record<string, HealthStats> {
    return Object.fromEntries([...this.loops].map(([name, loop]) => [name, loop.stats()]));
  }

  /** The other probed uplinks monitoring at least one of `loop`'s targets. */
  private sharers(loop: UplinkLoop): UplinkLoop[] {
    const mine = new Set(loop.config.targets);
    return [...this.loops.values()].filter((o) => o !== loop && o.health.state !== 'unknown' && o.config.targets.some((t) => mine.has(t)));
  }

  /**
   * Whether `loop`'s down verdict waits (CORRELATION_HOLD_MS at most): not when no other uplink
   * probes its targets, nor when a shared target answered through another uplink since this
   * uplink's suspicion began (the target lives: this path is dead), nor when every sharer is down
   * or waiting too (a shared cause: all go down now, together). Otherwise the sharers that are not
   * yet checking are asked for one round now, to learn quickly which of the two it is.
   */
  private holdDown(loop: UplinkLoop, at: number): boolean {
    const sharers = this.sharers(loop);
    if (sharers.length === 0) return false;
    const held = (loop.held ??= { since: at, asked: false });
    const from = Math.min(held.since, loop.health.suspect?.since ?? held.since);
    const mine = new Set(loop.config.targets);
    const alive = sharers.some((o) => o.health.probes.some((p) => mine.has(p.target) && p.answeredAt !== undefined && p.sentAt >= from));
    if (alive || sharers.every((o) => o.health.state === 'down' || o.held) || at - held.since >= CORRELATION_HOLD_MS) return false;
    if (!held.asked) {
      held.asked = true;
      for (const o of sharers) if (!o.health.suspect && o.health.state !== 'down') o.roundNow();
    }
    return true;
  }

  private loopsFor(config: Config, previous: Map<string, UplinkLoop>): Map<string, UplinkLoop> {
    const loops = new Map<string, UplinkLoop>();
    for (const uplink of config.uplinks) {
      const m = uplink.monitor;
      if (!m || m.targets.length === 0) continue;
      const before = previous.get(uplink.name);
      loops.set(uplink.name, before && sameMonitor(before.config, m) ? before : new UplinkLoop(uplink.name, m, this.ctx));
    }
    return loops;
  }

  /**
   * The address of a target. Names are looked up in the background (through the system
   * resolver) and kept RESOLVE_TTL_MS; until the first answer the probe fails with the reason.
   */
  private target(name: string, now: number): ProbeTarget | string {
    if (isIpv4(name)) return { name, ip: name };
    let entry = this.names.get(name);
    if (!entry) {
      entry = { refreshAt: now };
      this.names.set(name, entry);
    }
    if (!entry.pending && now >= entry.refreshAt) {
      const e = entry;
      e.pending = this.resolveName(name).then(
        (ip) => Object.assign(e, { ip, error: undefined, refreshAt: this.ctx.now() + RESOLVE_TTL_MS, pending: undefined }),
        (err: NodeJS.ErrnoException) =>
          // A failed lookup is retried soon; a known address is kept meanwhile.
          Object.assign(e, { error: `cannot resolve (${err.code ?? err.message})`, refreshAt: this.ctx.now() + RESOLVE_RETRY_MS, pending: undefined }),
      );
    }
    return entry.ip ? { name, ip: entry.ip } : entry.error ?? 'resolving';
  }
}

class UplinkLoop {
  health: HealthState;
  /** A down verdict waiting for the uplinks sharing its targets (HealthMonitor.holdDown); `since` in epoch ms. */
  held: { since: number; asked: boolean } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private prober: Prober | undefined;
  private proberKey = '';
  private openedAt = 0;
  private openError: { message: string; at: number } | undefined;
  /** Bumped when the socket is closed: answers to probes sent before are dropped. */
  private generation = 0;
  private nextProbeId = 0;
  private nextRound = 0;
  /** Probes sent through this uplink (cumulative; subtracted from the interface's tx counter). */
  private probesSent = 0;
  /** ICMP errors about our probes received (cumulative; subtracted from the interface's rx counter). */
  private refusalsReceived = 0;
  private nextSteadyAt = 0;
  private lastBurstAt = -Infinity;
  private wantBurst = false;
  /** Judgements scheduled at the RTO of burst rounds (between ticks, so an expiry is seen when it happens). */
  private expiries = new Set<NodeJS.Timeout>();
  /** The suspicion last written to the debug log. */
  private suspectLogged: Suspicion | undefined;
  private endpoint: UplinkEndpoint | undefined;

  constructor(
    readonly name: string,
    readonly config: MonitorConfig,
    private readonly ctx: LoopContext,
  ) {
    this.health = initialHealth(ctx.now());
  }

  start(): void {
    if (this.timer) return;
    this.nextSteadyAt = this.ctx.now();
    this.timer = setInterval(() => this.tick(), Math.min(TICK_MS, this.config.intervalMs));
    this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const t of this.expiries) clearTimeout(t);
    this.expiries.clear();
    this.closeProber();
  }

  /** The stats now, `since` on the wall clock. */
  stats(): HealthStats {
    const stats = healthStats(this.health, this.ctx.now(), this.config);
    return { ...stats, since: this.ctx.wall(stats.since) };
  }

  /** Every TICK_MS: counters, the steady round when due or a burst round when a suspicion wants one, the judgement. */
  private tick(): void {
    const now = this.ctx.now();
    this.alive(now);
    const endpoint = this.ctx.endpoint(this.name);
    this.endpoint = endpoint;
    if (!endpoint?.address || endpoint.linkDown) {
      this.closeProber();
      const where = !endpoint ? 'uplink not known' : endpoint.linkDown ? `${endpoint.interface} is down` : `${endpoint.interface} has no address`;
      this.apply(resetHealth(this.health, now, `${where}: not probed`));
      return;
    }
    const counters = this.ctx.counters(endpoint.interface);
    if (counters) this.health = trafficSample(this.health, { at: now, ...counters, probes: this.probesSent, refusals: this.refusalsReceived });
    let sent = true;
    if (now >= this.nextSteadyAt) {
      // Steady rounds keep their rhythm; after a stall (a blocked event loop) they do not catch up in a rush.
      this.nextSteadyAt = Math.max(this.nextSteadyAt + this.config.intervalMs, now + this.config.intervalMs / 2);
      this.round(endpoint, false, now);
    } else if (this.wantBurst && now - this.lastBurstAt >= burstSpacingMs(this.health) - TICK_MS / 2) {
      // (Half a tick of slack: the timer runs on the event loop's clock, so a tick may measure 49 ms.)
      this.lastBurstAt = now;
      this.round(endpoint, true, now);
    } else sent = false;
    this.apply(evaluate(this.health, now, this.config));
    // A traffic stall is strong evidence: its first burst round leaves in the tick that saw it.
    const stall = this.health.suspect?.stall ? this.health.suspect : undefined;
    if (!sent && this.wantBurst && stall && this.lastBurstAt < stall.since) {
      this.lastBurstAt = now;
      this.round(endpoint, true, now);
    }
  }

  private round(endpoint: UplinkEndpoint, burst: boolean, now: number): void {
    const prober = this.proberFor({ address: endpoint.address as string, interface: endpoint.interface });
    const round = this.nextRound++;
    const generation = this.generation;
    const current = () => generation === this.generation && this.timer !== undefined;
    if (burst) {
      this.ctx.log?.debug('health_burst', { uplink: this.name, round, spacing_ms: burstSpacingMs(this.health) });
      // The round is unanswered at sentAt + RTO: judge then, not up to a tick later.
      const expiry = setTimeout(() => {
        this.expiries.delete(expiry);
        if (!current()) return;
        const at = this.ctx.now();
        this.alive(at);
        this.apply(evaluate(this.health, at, this.config));
      }, rtoMs(this.health, this.config) + 1);
      this.expiries.add(expiry);
    }
    for (const name of this.config.targets) {
      const id = this.nextProbeId++;
      this.health = probeSent(this.health, { id, round, target: name, sentAt: now, burst });
      const target = this.ctx.target(name);
      if (typeof target === 'string') {
        this.health = probeFailed(this.health, { id, at: now, error: target });
      } else if (!prober) {
        this.health = probeFailed(this.health, { id, at: now, error: this.openError?.message ?? 'no socket' });
      } else {
        this.probesSent++;
        // Answers are awaited LATE_MS: a late answer is still proof of life.
        void prober.probe(target, LATE_MS).then((reply) => {
          if (!current()) return;
          const at = this.ctx.now();
          this.alive(at);
          if (reply.ok) this.health = probeAnswered(this.health, { id, at, rttMs: reply.rttMs });
          else if (reply.error !== 'timeout') {
            // An ICMP error with a sender arrived through the interface; a TCP connect error does not say.
            if (reply.refusal?.from) this.refusalsReceived++;
            this.health = probeFailed(this.health, { id, at, error: reply.error, ...(reply.refusal && { refusal: reply.refusal }) });
          } else return;
          this.apply(evaluate(this.health, at, this.config));
        });
      }
    }
  }

  /** A steady round at the next tick (another uplink's down verdict waits for what this one sees). */
  roundNow(): void {
    this.nextSteadyAt = Math.min(this.nextSteadyAt, this.ctx.now());
  }

  /** The judgement now, out of turn (a held down verdict released by another uplink's). */
  judgeAgain(at: number): void {
    this.alive(at);
    this.held = undefined;
    this.apply(evaluate(this.health, at, this.config), true);
  }

  /** The loop runs at `at`: a pause before it is left out of the judgement (state.ts monitorRan), and logged. */
  private alive(at: number): void {
    const before = this.health.pauses.length;
    this.health = monitorRan(this.health, at, Math.min(TICK_MS, this.config.intervalMs));
    const pause = this.health.pauses[this.health.pauses.length - 1];
    if (this.health.pauses.length > before && pause) this.ctx.log?.debug('health_paused', { uplink: this.name, ms: pause.to - pause.from });
  }

  private apply(step: Step, released = false): void {
    const down = step.change?.to === 'down';
    if (down && !released && this.ctx.holdDown(this, step.health.since)) {
      // The verdict is reached again at the next judgement; meanwhile the state stays as it was.
      this.wantBurst = false;
      return;
    }
    if (!down) this.held = undefined;
    this.health = step.health;
    this.wantBurst = step.burst;
    this.logSuspicion(step);
    if (!step.change) return;
    this.held = undefined;
    this.ctx.emit({
      uplink: this.name,
      ...step.change,
      stats: this.stats(),
      ...(this.endpoint && { endpoint: this.endpoint }),
    });
    if (down) this.ctx.releaseSharers(this, step.health.since);
  }

  /**
   * When a suspicion begins: the sharers are asked for a round (their answers, a few ms later, tell a dead path from
   * dead targets before the verdict is due) and a debug line; when it ends without a verdict (an answer came), a debug line.
   */
  private logSuspicion(step: Step): void {
    const was = this.suspectLogged;
    const is = this.health.suspect ?? undefined;
    if (is === was) return;
    this.suspectLogged = is;
    if (is && !was) this.ctx.suspected(this);
    if (is) this.ctx.log?.debug('health_suspect', { uplink: this.name, since: new Date(this.ctx.wall(is.since)).toISOString(), cause: is.cause });
    else if (was && !step.change) this.ctx.log?.debug('health_clear', { uplink: this.name, suspect_ms: this.ctx.now() - was.since, cause: was.cause });
  }

  private proberFor(source: ProbeSource): Prober | undefined {
    const key = `${source.address}%${source.interface}`;
    const now = this.ctx.now();
    if (key === this.proberKey) {
      // Not while answers come back: a reopen discards the probes in flight and would delay recovery.
      const answering = this.health.lastAnswerAt !== null && this.health.lastAnswerAt >= this.health.since;
      const stale = this.health.state === 'down' && !answering && now - this.openedAt >= REOPEN_DOWN_MS;
      if (this.prober && !stale) return this.prober;
      if (this.openError && now - this.openError.at < REOPEN_MS) return undefined;
    }
    this.closeProber();
    this.proberKey = key;
    this.openedAt = now;
    try {
      this.prober = this.ctx.createProber(this.config.method, source, this.config.port);
    } catch (err) {
      this.openError = { message: (err as Error).message, at: now };
    }
    return this.prober;
  }

  private closeProber(): void {
    this.generation++;
    this.prober?.close();
    this.prober = undefined;
    this.proberKey = '';
    this.openError = undefined;
  }
}

/** /proc/net/dev read at most once per tick for all uplinks. */
function sharedNetDev(now: () => number): (ifname: string) => InterfaceCounters | undefined {
  let at = -Infinity;
  let table = new Map<string, InterfaceCounters>();
  return (ifname) => {
    const t = now();
    if (t - at >= TICK_MS / 2) {
      table = readNetDev();
      at = t;
    }
    return table.get(ifname);
  };
}

function sameMonitor(a: MonitorConfig, b: MonitorConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
