// HealthMonitor: probe rounds on timers for every uplink with a `monitor:`, one state machine
// (state.ts) per uplink, `change` events for the daemon. Wiring (src/daemon/run.ts):
//   const health = new HealthMonitor(config, (name) => daemon.uplink(name));   // UplinkStatus fits UplinkEndpoint
//   Daemon gets `health` (verdicts() -> facts.health, 'change' -> replan, reconfigure on reload);
//   health.on('change', healthActions({ hooksDir: () => config.paths.hooksDir, log, afterReplan: () => daemon.whenIdle() }));
//   health.start(); ... health.stop();
import { EventEmitter } from 'node:events';
import dns from 'node:dns';
import type { Config, MonitorConfig } from '../config/types';
import { isIpv4 } from '../model/ipv4';
import type { HealthVerdict } from '../model/facts';
import { createProber, type ProbeReply, type ProbeSource, type ProbeTarget, type Prober } from './probers';
import {
  healthStats,
  initialHealth,
  observeLate,
  observeRound,
  resetHealth,
  type HealthState,
  type HealthStats,
  type ProbeResult,
  type Step,
} from './state';

/** Where an uplink is right now (from the planner's UplinkStatus). */
export interface UplinkEndpoint {
  interface: string;
  /** Absent while the uplink has no address: it is not probed then. */
  address?: string;
  gateway?: string;
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
}

export interface MonitorOptions {
  /** Opens the sockets of one uplink; tests inject fakes. */
  createProber?: (method: MonitorConfig['method'], source: ProbeSource, port?: number) => Prober;
  /** Host name -> IPv4 address, for targets given as names. */
  resolve?: (name: string) => Promise<string>;
  now?: () => number;
}

/** Answers are awaited this many timeouts (at least LATE_MIN_MS) after the round is judged, as proof of life. */
export const LATE_FACTOR = 5;
export const LATE_MIN_MS = 1000;
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

export interface HealthMonitor {
  on(event: 'change', listener: (change: HealthChange) => void): this;
  emit(event: 'change', change: HealthChange): boolean;
}

/** What an uplink's probe loop needs from the monitor. */
interface LoopContext {
  endpoint: EndpointLookup;
  createProber: NonNullable<MonitorOptions['createProber']>;
  now: () => number;
  /** The address to probe, or why there is none yet. */
  target: (name: string) => ProbeTarget | string;
  emit: (change: HealthChange) => void;
}

interface NameEntry {
  ip?: string;
  error?: string;
  /** When to look the name up again. */
  refreshAt: number;
  pending?: Promise<unknown>;
}

export class HealthMonitor extends EventEmitter {
  private loops: Map<string, UplinkLoop>;
  private running = false;
  private readonly names = new Map<string, NameEntry>();
  private readonly resolveName: NonNullable<MonitorOptions['resolve']>;
  private readonly ctx: LoopContext;

  constructor(config: Config, endpoints: EndpointLookup, options: MonitorOptions = {}) {
    super();
    this.resolveName = options.resolve ?? (async (name) => (await dns.promises.lookup(name, { family: 4 })).address);
    const now = options.now ?? Date.now;
    this.ctx = {
      endpoint: endpoints,
      createProber: options.createProber ?? createProber,
      now,
      target: (name) => this.target(name, now()),
      emit: (change) => this.emit('change', change),
    };
    this.loops = this.loopsFor(config, new Map());
  }

  /** Starts probing; the timers keep the process alive until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const loop of this.loops.values()) loop.start();
  }

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

  stats(): Record<string, HealthStats> {
    return Object.fromEntries([...this.loops].map(([name, loop]) => [name, healthStats(loop.health)]));
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
  private timer: NodeJS.Timeout | undefined;
  private readonly roundTimers = new Set<NodeJS.Timeout>();
  private prober: Prober | undefined;
  private proberKey = '';
  private openedAt = 0;
  private openError: { message: string; at: number } | undefined;
  /** Bumped when the socket is closed: rounds sent before are dropped, not judged. */
  private generation = 0;

  constructor(
    readonly name: string,
    readonly config: MonitorConfig,
    private readonly ctx: LoopContext,
  ) {
    this.health = initialHealth(ctx.now());
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.round(), this.config.intervalMs);
    this.round();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const t of this.roundTimers) clearTimeout(t);
    this.roundTimers.clear();
    this.closeProber();
  }

  private round(): void {
    const endpoint = this.ctx.endpoint(this.name);
    if (!endpoint?.address) {
      this.closeProber();
      const where = endpoint ? `${endpoint.interface} has no address` : 'uplink not known';
      this.apply(resetHealth(this.health, this.ctx.now(), `${where}: not probed`), endpoint);
      return;
    }
    const prober = this.proberFor({ address: endpoint.address, interface: endpoint.interface });
    const cfg = this.config;
    const waitMs = Math.max(cfg.timeoutMs * LATE_FACTOR, LATE_MIN_MS);
    const results: (ProbeResult | undefined)[] = cfg.targets.map(() => undefined);
    const generation = this.generation;
    const current = () => generation === this.generation && this.timer !== undefined;
    let judged = false;
    cfg.targets.forEach((name, i) => {
      const target = this.ctx.target(name);
      if (typeof target === 'string') {
        results[i] = { target: name, ok: false, error: target };
      } else if (!prober) {
        results[i] = { target: name, ok: false, error: this.openError?.message ?? 'no socket' };
      } else {
        void prober.probe(target, waitMs).then((reply) => {
          if (!judged) results[i] = toResult(name, reply);
          else if (reply.ok && current()) this.health = observeLate(this.health, { target: name, rttMs: reply.rttMs });
        });
      }
    });
    const judge = setTimeout(() => {
      this.roundTimers.delete(judge);
      judged = true;
      if (!current()) return;
      const round = {
        at: this.ctx.now(),
        results: results.map((r, i) => r ?? { target: cfg.targets[i], ok: false, error: 'timeout' }),
      };
      this.apply(observeRound(this.health, round, cfg), endpoint);
    }, cfg.timeoutMs);
    this.roundTimers.add(judge);
  }

  private apply(step: Step, endpoint: UplinkEndpoint | undefined): void {
    this.health = step.health;
    if (!step.change) return;
    this.ctx.emit({
      uplink: this.name,
      ...step.change,
      stats: healthStats(step.health),
      ...(endpoint && { endpoint }),
    });
  }

  private proberFor(source: ProbeSource): Prober | undefined {
    const key = `${source.address}%${source.interface}`;
    const now = this.ctx.now();
    if (key === this.proberKey) {
      // Not while answers come back: a reopen discards the rounds in flight and would delay recovery.
      const stale = this.health.state === 'down' && this.health.goodStreak === 0 && now - this.openedAt >= REOPEN_DOWN_MS;
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

function toResult(target: string, reply: ProbeReply): ProbeResult {
  return reply.ok ? { target, ok: true, rttMs: reply.rttMs } : { target, ok: false, error: reply.error };
}

function sameMonitor(a: MonitorConfig, b: MonitorConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
