// The daemon loop: kernel events, lease-file changes, health changes, reloads and the
// periodic resync all mark the state dirty with a cause; after a short debounce (bursts
// coalesce) one cycle reads the kernel and leases, plans, diffs and applies the smallest
// change, logging each change with the causes that triggered it.
//
// The cycle itself is the engine's (src/engine/cycle.ts: observe, plan, diff, apply, the same
// functions `uplinkd apply` runs); this file adds the policy around it: debounce, retry with
// backoff, storm spacing, drift accounting by object identity, conflict limiting and status.
// Flow pinning's nftables table is one of the cycle's objects: nft changes send no rtnetlink
// events, so the daemon follows nf_tables notifications (src/nft/events.ts): a change to `table ip
// uplinkd` by anyone (`nft flush ruleset`, a firewall reload) makes a cycle that reads the table again.
// Otherwise it is read only by periodic resyncs, reloads, the first cycle and retries after a failed nft
// change, and only at the resync when notifications cannot be had.
//
// Our own changes come back as kernel and nftables events too. They are not filtered: they cost one
// more snapshot (and one read of the table), whose diff is empty, and an empty diff writes nothing,
// so the loop stops.
import { servedPolicies, type ServedPolicy } from './policy-status';
import { withRefusals, type RefusedChange, type ServedUplink } from './refused';
import {
  applyChanges, computeCycle, describeKept, guardCycle, keepNexthopsInUse, observe, observeTeardown, routeInterest, teardownChanges,
  type KeptNexthop,
} from '../engine/cycle';
import { isGlob, nameMatcher } from '../facts/glob';
import type { HealthStats } from '../health/state';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/types';
import { UplinkdError } from '../errors';
import { routeOfInterest, type KernelPort, type RouteInterest } from '../kernel/port';
import { rateLimited, type LogFields, type Logger } from '../log';
import type { HealthVerdict, Lease } from '../model/facts';
import type { Change, DesiredState, KernelState } from '../model/types';
import type { NftWatch } from '../nft/events';
import type { NftRunner, ObservedPinning } from '../nft/nft';
import { formatPinningChange, observedAfter, pinningIdentity, pinningInPlace, planPinning, type PinningChange } from '../nft/pinning';
import type { PinningRuleset } from '../nft/ruleset';
import { describeDefaultPath, type UplinkStatus } from '../plan/planner';
import { formatChange } from '../model/text';
import { objectIdentity } from '../model/identity';
import { CONFLICT_DEFAULTS, ConflictLimiter, conflictHint, type ConflictPolicy } from './conflict';
import { PlannedUplinks } from './planned-uplinks';
import { ExpectedEchoes } from './echoes';
import { throughDevices, waitingForLink } from './link-flush';
import { capCauses, changeSummary, CHANGES_DETAIL_MAX, CHANGES_SHOWN, joinCauses } from './log-volume';
import type { Nexthop } from '../model/types';
import { monotonicNow, wallTime } from '../system/clock';

/** The health monitor as the daemon sees it (src/health): current verdicts and a 'change' event. */
export interface HealthSource {
  verdicts(): Record<string, HealthVerdict>;
  on(event: 'change', listener: (change: HealthChangeLike) => void): unknown;
  off(event: 'change', listener: (change: HealthChangeLike) => void): unknown;
  /** Called with a reloaded config (HealthMonitor.reconfigure). */
  reconfigure?(config: Config): void;
  /** Per-uplink RTT, jitter, loss and time in state (HealthMonitor.stats), for status. */
  stats?(): Record<string, HealthStats>;
}

/** What the daemon reads from a health 'change' event (src/health HealthChange). */
export interface HealthChangeLike {
  uplink: string;
  from: HealthVerdict;
  to: HealthVerdict;
  reason: string;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Side effects outside rtnetlink: iproute2 name files and the multipath sysctl. */
export interface SystemSettings {
  /** `previous`: the configuration a reload replaces (its name files at paths no longer named are removed). */
  sync(config: Config, previous?: Config): Promise<void>;
  remove(config: Config): Promise<void>;
}

export type ReadLeases = (globs: string[], options?: { warn?: (file: string, message: string) => void }) => Promise<Lease[]>;

export interface DaemonOptions {
  configFile: string;
  port: KernelPort;
  readLeases: ReadLeases;
  loadConfig: (file: string) => Promise<Config>;
  log: Logger;
  system: SystemSettings;
  /** Runs nft for flow pinning's table (src/nft/nft.ts runNft; tests pass a fake). */
  nft: NftRunner;
  /**
   * Follows changes to `table ip uplinkd` (src/nft/events.ts watchNftables); without it, or when it throws (no
   * nf_tables, no permission), the table is read again only at the periodic resync.
   */
  nftWatch?: NftWatch;
  health?: HealthSource;
  /** Where the daemon publishes each cycle's uplinks (the health monitor reads its endpoints there). */
  uplinks?: PlannedUplinks;
  /**
   * The clock spans are measured on (debounce, grace, backoff, conflict limits), epoch ms. Default: the monotonic
   * clock (system/clock.ts), which a step of the system clock does not move.
   */
  now?: () => number;
  /** The clock of the times status shows, epoch ms. Default: Date.now; `now` when only that is given. */
  wallNow?: () => number;
  timers?: Timers;
  /** Watch lease-file directories (fs.watch); default true. */
  watchLeases?: boolean;
  conflict?: ConflictPolicy;
}

export interface DaemonEvent {
  at: string;
  event: string;
  text: string;
  cause?: string;
}

export interface DaemonStatus {
  pid: number;
  configFile: string;
  startedAt: string;
  cycles: number;
  lastCycle?: { at: string; causes: string[]; applied: number; failed: number; deferred: number; error?: string };
  /** The last cycle applied everything it wanted (nothing failed or held back) and no foreign object holds a slot of the plan. */
  inSync: boolean;
  /** Foreign objects holding slots of the plan (src/plan/collisions.ts), each naming the uplink it blocks. */
  collisions?: string[];
  /**
   * Nexthops of uplinkd's the last cycle did not delete because other programs' routes or groups use them (the kernel
   * would delete those routes with them): one line each (src/reconcile/nexthop-users.ts describeKept).
   */
  kept?: string[];
  /** Changes applied and failed by all cycles since start (metrics counters). */
  totals?: { applied: number; failed: number };
  /** Per uplink; `refused` (and the end of `reason`) names the kernel's refusals of its changes in the last cycle. */
  uplinks: ServedUplink[];
  /** Per policy: the uplink it uses now and why (src/daemon/policy-status.ts). */
  policies?: ServedPolicy[];
  /** Flow pinning's status line (src/nft/pinning.ts). */
  pinning: string;
  /** Pinning's table matches the config; absent when pinning is disabled or not checked yet. */
  pinningInPlace?: boolean;
  warnings: string[];
  facts: {
    leases: Lease[];
    health: Record<string, HealthVerdict>;
    links: { name: string; up: boolean; carrier: boolean }[];
    addresses: string[];
  };
  /** Monitored uplinks' probe statistics. */
  health: Record<string, HealthStats>;
  conflicts: { object: string; restorations: number; backoffMs: number; retryAt?: string }[];
  events: DaemonEvent[];
}

/**
 * The first cycle after an accepted reload: changes applied, failed (refused by the kernel or nft), deferred (held
 * back by the conflict limit or waiting for a link), foreign objects holding slots of the plan (collisions), and the
 * cycle's error when it failed as a whole. `ran` false: no cycle ran (the daemon stopped meanwhile).
 */
export interface ReloadCycle {
  ran: boolean;
  applied: number;
  failed: number;
  deferred: number;
  collisions: number;
  error?: string;
}

export type ReloadResult = { ok: true; cycle: ReloadCycle } | { ok: false; error: string };

const MAX_EVENTS = 50;
/** A change the kernel refused (or whose answer was lost) is retried after this, doubling per failed cycle up to RETRY_MAX_MS, ms. */
export const RETRY_MIN_MS = 250;
export const RETRY_MAX_MS = 15_000;
/**
 * Storms are spaced by a budget of cycle time (a token bucket): it fills at STORM_DUTY ms per ms of wall time up
 * to STORM_BURST_MS, and each cycle spends its duration. A cycle starts at once while the budget is not negative,
 * else when it has refilled to zero (at most STORM_GAP_MAX_MS later). So however fast events come, cycles take
 * at most about a quarter of a core, while the few cycles of one DHCP renumbering after a quiet moment run back to
 * back: a gap measured from the last cycles alone would delay the next renumbering's first cycle too.
 */
const STORM_DUTY = 0.25;
/**
 * How long an uplink interface that lost an address may wait for its next one before a cycle acts (ms): DHCP clients
 * renumber by deleting the old address and then adding the new (dhclient-script, udhcpc), and on a router with a big
 * table the kernel's flush after the delete holds the rtnl lock for tens of ms. Acting in between would tear the
 * uplink down and build it up again, two cycles, the first one waiting on that lock; the address arriving ends the
 * wait at once. An address that is really gone is acted on this much later.
 */
export const ADDRESS_GRACE_MS = 100;
const STORM_BURST_MS = 200;
const STORM_GAP_MAX_MS = 1_000;

/**
 * `uplinkd run`'s policy around the engine's one cycle (src/engine/cycle.ts): kernel events, health changes,
 * reloads and the periodic resync mark it dirty; a debounce (`daemon.debounce`, ms; none for health verdicts)
 * coalesces them into one cycle at a time; failed changes are retried with backoff (RETRY_MIN_MS doubling to
 * RETRY_MAX_MS); storms are spaced; drift (an owned object re-added) is counted by objectIdentity and limited per
 * object (ConflictLimiter). Never throws out of a cycle: failures are logged, recorded in status() and retried.
 */
export class Daemon {
  private config: Config | undefined;
  private configFile: string;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly timers: Timers;
  private readonly log: Logger;
  /** A flush of a big foreign table overruns the socket many times a second: one line, then a count per window. */
  private readonly warnOverrun: (fields: LogFields) => void;
  private readonly limiter: ConflictLimiter;

  private causes: string[] = [];
  private debounce: unknown;
  /** Uplink interfaces that lost an address and have not had one since: this.now() until which a cycle waits (ADDRESS_GRACE_MS). */
  private addressGrace = new Map<string, number>();
  private resyncTimer: unknown;
  private wakeups = new Map<number, unknown>();
  private running: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private stopped = true;
  private unsubscribe: (() => void) | undefined;
  /** The current retry delay after failed changes (0: the last cycle had none), ms. */
  private retryDelay = 0;
  /** The storm budget (ms of cycle time, see STORM_DUTY) and this.now() when it was last brought up to date. */
  private budget = STORM_BURST_MS;
  private budgetAt = 0;
  private watchers = new Map<string, fs.FSWatcher>();
  private readonly onHealth = (c: HealthChangeLike) => {
    this.log.info('health', { uplink: c.uplink, from: c.from, to: c.to, why: c.reason });
    this.record('health', `${c.uplink}: ${c.from} -> ${c.to}`, c.reason);
    // A verdict is already confirmed (there is no burst of them to gather): replan without the debounce.
    this.markDirty(`health of ${c.uplink}: ${c.from} -> ${c.to} (${c.reason})`, true);
  };
  /** Config replaced by a reload whose ownership criteria may differ: its leftovers go once. */
  private retired: Config | undefined;

  /** Identities (objectIdentity, pinningIdentity) of the owned objects in place after the last cycle: re-adding one is drift. */
  private present = new DesiredIdentities();
  /**
   * Devices with a link event (down, up, carrier, gone) or an address removal since the last cycle began: the kernel
   * may have flushed routes and nexthops through them itself, so re-adding those is not another program's drift.
   */
  private linkEvents = new Set<string>();
  private interestMemo: { config: Config; retired: Config | undefined; interest: RouteInterest } | undefined;
  /** The notifications the last cycle's own changes cause: they need no cycle (src/daemon/echoes.ts). */
  private readonly echoes = new ExpectedEchoes();
  /** `table ip uplinkd` as the last cycle left it; undefined: read it in the next cycle. */
  private nftKnown: ObservedPinning | undefined;
  /** A notification said `table ip uplinkd` changed since the last cycle began: the next one reads it. */
  private nftChanged = false;
  /** Stops the nftables notifications; undefined when they are not followed (the periodic resync checks). */
  private unwatchNft: (() => void) | undefined;
  private pinning: { status: string; inPlace?: boolean } = { status: 'flow pinning: not checked yet' };
  /**
   * this.now() when `table ip uplinkd` was last read or written: between resyncs status reports the table as it
   * was then (nft changes send no rtnetlink event), and says so.
   */
  private nftCheckedAt = 0;
  private readonly planned: PlannedUplinks;
  private startedAt = 0;
  private cycles = 0;
  private totals = { applied: 0, failed: 0 };
  /** The last cycle's refused changes, shown on their uplinks' status lines. */
  private refused: readonly RefusedChange[] = [];
  private last: DaemonStatus['lastCycle'];
  /** Reloads waiting for the outcome of the first cycle with their configuration (reload()). */
  private reloadWatches: { cause: string; cycle?: ReloadCycle }[] = [];
  private inSync = false;
  private collisions: string[] = [];
  /** Causes of resyncs asked for from outside (nudge) whose cycle has not run yet. */
  private readonly requested = new Set<string>();
  private kept: string[] = [];
  private warnings: string[] = [];
  private policies: ServedPolicy[] = [];
  private facts: DaemonStatus['facts'] = { leases: [], health: {}, links: [], addresses: [] };
  private events: DaemonEvent[] = [];

  constructor(private readonly opts: DaemonOptions) {
    this.configFile = opts.configFile;
    this.now = opts.now ?? monotonicNow;
    this.wallNow = opts.wallNow ?? opts.now ?? Date.now;
    this.timers = opts.timers ?? REAL_TIMERS;
    this.log = opts.log;
    this.warnOverrun = rateLimited((f) => this.log.warn('overrun', f), 5_000, { now: () => this.now(), setTimeout: (fn, ms) => this.timers.setTimeout(fn, ms) });
    this.limiter = new ConflictLimiter(opts.conflict ?? CONFLICT_DEFAULTS);
    this.planned = opts.uplinks ?? new PlannedUplinks();
  }

  /** Loads the config (throws UplinkdError('config') when invalid), subscribes and converges once. */
  async start(): Promise<void> {
    const config = await this.opts.loadConfig(this.configFile);
    this.config = config;
    this.stopped = false;
    this.startedAt = this.now();
    await this.syncSystem(config);
    // Subscribe before the first snapshot so nothing between the two is missed.
    this.unsubscribe = this.opts.port.subscribe(
      (e) => {
        // Routes in other programs' tables (a BGP feed) are none of our business: no cycle for them.
        if (e.route && this.config && !routeOfInterest(e.route, this.interest(this.config))) return;
        if (this.echoes.consume(e)) return;
        if (e.dev && (e.kind === 'link' || (e.kind === 'address' && e.action === 'del'))) this.linkEvents.add(e.dev);
        const graceChanged = e.kind === 'address' && e.dev !== undefined && this.noteAddressGrace(e.dev, e.action);
        this.markDirty(`${e.kind} ${e.action === 'new' ? 'new/changed' : 'deleted'}: ${e.summary}`);
        if (graceChanged) this.rearmDebounce();
      },
      (reason) => {
        this.warnOverrun({ msg: reason ?? 'netlink socket overrun (ENOBUFS), events were lost: full resync' });
        this.markDirty('netlink overrun: full resync');
      },
    );
    this.unwatchNft = this.watchNftables();
    this.opts.health?.on('change', this.onHealth);
    this.watchLeaseDirs();
    this.scheduleResync();
    this.log.info('start', { config: this.configFile, uplinks: config.uplinks.map((u) => u.name).join(','), pid: process.pid });
    this.markDirty('start: adopt and converge');
    await this.whenIdle();
  }

  /**
   * Stops following the kernel. Routing stays as it is unless `cleanup`, which removes
   * everything uplinkd owns (as `uplinkd down`).
   */
  async stop(options: { cleanup: boolean } = { cleanup: false }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.unwatchNft?.();
    this.unwatchNft = undefined;
    this.opts.health?.off('change', this.onHealth);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.timers.clearTimeout(this.debounce);
    this.timers.clearTimeout(this.resyncTimer);
    for (const t of this.wakeups.values()) this.timers.clearTimeout(t);
    this.wakeups.clear();
    this.debounce = undefined;
    await this.running;
    const config = this.config;
    if (options.cleanup && config) {
      const cause = 'stop --cleanup';
      const teardown = await observeTeardown(this.opts.port, config, this.opts.nft);
      for (const k of teardown.kept) this.log.warn('nexthop-kept', { msg: describeKept(k), cause });
      const result = await applyChanges(this.opts.port, teardown, this.opts.nft);
      if (result.nftApplied) this.log.info('apply', { change: formatPinningChange(result.nftApplied), cause });
      if (result.nftFailed) this.log.error('pinning', { error: result.nftFailed.message, cause });
      for (const c of result.applied) this.log.info('apply', { change: formatChange(c), cause });
      for (const f of result.failed) this.log.error('apply-failed', { change: formatChange(f.change), error: f.error.message });
      await this.opts.system.remove(config);
    }
    this.log.info('stop', { cleanup: options.cleanup, msg: options.cleanup ? 'removed what uplinkd owns' : 'routing left in place' });
    this.resolveIdle();
  }

  /**
   * Re-reads the config (the running file, or `file`). An invalid file is rejected with
   * the same error as `uplinkd check`, logged, and the running config stays.
   */
  async reload(file?: string): Promise<ReloadResult> {
    const target = file ?? this.configFile;
    let next: Config;
    try {
      next = await this.opts.loadConfig(target);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error('reload-rejected', { file: target, error: message, msg: 'keeping the running configuration' });
      this.record('reload-rejected', message);
      return { ok: false, error: message };
    }
    const previous = this.config;
    this.config = next;
    this.configFile = target;
    if (previous && ownershipChanged(previous, next)) this.retired = previous;
    if (previous && previous.paths.controlSocket !== next.paths.controlSocket) {
      this.log.warn('reload', { msg: 'paths.control_socket changed: takes effect at the next restart' });
    }
    this.nftKnown = undefined; // the table depends on the config: read it again
    this.opts.health?.reconfigure?.(next);
    await this.syncSystem(next, previous);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.watchLeaseDirs();
    this.timers.clearTimeout(this.resyncTimer);
    this.scheduleResync();
    this.log.info('reload', { file: target, uplinks: next.uplinks.map((u) => u.name).join(',') });
    // The first cycle with the new configuration is the one whose causes hold this reload's (later ones follow
    // the kernel's notifications of its own changes).
    const watch: { cause: string; cycle?: ReloadCycle } = { cause: `config reloaded from ${target}` };
    this.reloadWatches.push(watch);
    this.markDirty(watch.cause);
    await this.whenIdle();
    this.reloadWatches = this.reloadWatches.filter((w) => w !== watch);
    return { ok: true, cycle: watch.cycle ?? { ran: false, applied: 0, failed: 0, deferred: 0, collisions: 0 } };
  }

  /**
   * Asks for a full resync soon (`uplinkd hook`, the control socket's `resync`). Its cycle's outcome is logged at info
   * level even when nothing changes, so that whoever asked (a DHCP client's hook) is seen to have been answered.
   */
  nudge(cause: string): void {
    this.requested.add(cause);
    this.markDirty(cause);
  }

  /** Resolves once no cycle is running or pending (or the daemon stopped). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The configuration in force (the last one that loaded), once started. */
  currentConfig(): Config | undefined {
    return this.config;
  }

  /** What `uplinkd status` and the status page show: the last cycle's plan, uplinks, health, pinning, recent events (epoch ms). */
  status(): DaemonStatus {
    const now = this.now();
    return {
      pid: process.pid,
      configFile: this.configFile,
      startedAt: this.iso(this.startedAt),
      cycles: this.cycles,
      lastCycle: this.last,
      inSync: this.inSync,
      collisions: [...this.collisions],
      kept: [...this.kept],
      totals: { ...this.totals },
      uplinks: withRefusals(this.planned.all(), this.refused),
      policies: this.policies,
      pinning: this.pinning.status,
      ...(this.pinning.inPlace !== undefined ? { pinningInPlace: this.pinning.inPlace } : {}),
      warnings: this.warnings,
      facts: this.facts,
      health: this.opts.health?.stats?.() ?? {},
      conflicts: this.limiter.active(now).map((c) => ({
        object: c.object,
        restorations: c.restorations,
        backoffMs: c.backoffMs,
        ...(c.blockedUntil !== undefined ? { retryAt: this.iso(c.blockedUntil) } : {}),
      })),
      events: [...this.events],
    };
  }

  /** `at` (this.now()) as an ISO 8601 time on the wall clock. */
  private iso(at: number): string {
    return new Date(wallTime(at, this.now, this.wallNow)).toISOString();
  }

  /** routeInterest() of `config` and the retired one, kept while both stay: asked for each route notification. */
  private interest(config: Config): RouteInterest {
    const memo = this.interestMemo;
    if (memo && memo.config === config && memo.retired === this.retired) return memo.interest;
    const interest = routeInterest(config, this.retired);
    this.interestMemo = { config, retired: this.retired, interest };
    return interest;
  }

  /** Name files and sysctl are conveniences: failing them must not stop routing. */
  private async syncSystem(config: Config, previous?: Config): Promise<void> {
    try {
      await this.opts.system.sync(config, previous);
    } catch (err) {
      this.log.error('system-settings', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  private isIdle(): boolean {
    return this.stopped || (this.running === undefined && this.debounce === undefined && this.causes.length === 0);
  }

  private resolveIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** `urgent`: start the cycle without the debounce (still after a storm's gap). */
  private markDirty(cause: string, urgent = false): void {
    if (this.stopped) return;
    if (!this.causes.includes(cause)) this.causes.push(cause);
    if (this.running === undefined) this.armDebounce(urgent);
  }

  /** An address event on an uplink's interface: starts or ends its wait for a next address; whether that changed. */
  private noteAddressGrace(dev: string, action: 'new' | 'del'): boolean {
    if (action === 'new') return this.addressGrace.delete(dev);
    if (!this.config?.uplinks.some((u) => u.interface === dev)) return false;
    this.addressGrace.set(dev, this.now() + ADDRESS_GRACE_MS);
    return true;
  }

  /** A waiting debounce timed again from now, for a wait for an address that began or ended. */
  private rearmDebounce(): void {
    if (this.debounce === undefined || this.running !== undefined) return;
    this.timers.clearTimeout(this.debounce);
    this.debounce = undefined;
    this.armDebounce();
  }

  private armDebounce(urgent = false): void {
    if (this.stopped) return;
    if (this.debounce !== undefined) {
      if (!urgent) return;
      this.timers.clearTimeout(this.debounce);
    }
    const gap = Math.max(0, -this.refillBudget() / STORM_DUTY);
    const now = this.now();
    let grace = 0;
    for (const [dev, until] of this.addressGrace) {
      if (until <= now) this.addressGrace.delete(dev);
      else grace = Math.max(grace, until - now);
    }
    const wait = Math.max(urgent ? 0 : Math.max(this.config?.daemon.debounceMs ?? 0, grace), gap);
    this.debounce = this.timers.setTimeout(() => {
      this.debounce = undefined;
      this.kick();
    }, wait);
  }

  /** The storm budget now (ms; negative: cycles must wait): refilled at STORM_DUTY since it was last brought up to date. */
  private refillBudget(): number {
    const now = this.now();
    this.budget = Math.min(STORM_BURST_MS, this.budget + Math.max(0, now - this.budgetAt) * STORM_DUTY);
    this.budgetAt = now;
    return this.budget;
  }

  /** After failed changes or a failed cycle: try again with a growing delay, not only at the next resync. */
  private scheduleRetry(what: string): void {
    this.retryDelay = this.retryDelay === 0 ? RETRY_MIN_MS : Math.min(RETRY_MAX_MS, this.retryDelay * 2);
    this.wakeAt(this.now() + this.retryDelay, `retry: ${what}`);
  }

  private kick(): void {
    if (this.running !== undefined || this.stopped || this.causes.length === 0) return;
    const causes = this.causes;
    this.causes = [];
    const started = this.now();
    this.running = this.cycle(causes)
      .catch((err) => {
        const message = err instanceof Error ? err.message : String(err);
        this.log.error('cycle-failed', { error: message, cause: joinCauses(causes) });
        this.record('cycle-failed', message, joinCauses(causes));
        this.last = { at: this.iso(this.now()), causes: capCauses(causes), applied: 0, failed: 0, deferred: 0, error: message };
        this.inSync = false;
        this.scheduleRetry('the last cycle failed');
      })
      .finally(() => {
        const last = this.last;
        for (const w of this.reloadWatches) {
          if (w.cycle !== undefined || last === undefined || !causes.includes(w.cause)) continue;
          w.cycle = { ran: true, applied: last.applied, failed: last.failed, deferred: last.deferred, collisions: this.collisions.length,
            ...(last.error !== undefined ? { error: last.error } : {}) };
        }
        // A debt is capped so that one long cycle (the first, a reload) delays the next by at most STORM_GAP_MAX_MS.
        this.budget = Math.max(-STORM_GAP_MAX_MS * STORM_DUTY, this.refillBudget() - (this.now() - started));
        this.running = undefined;
        if (this.causes.length > 0) this.armDebounce();
        this.resolveIdle();
      });
  }

  /** One engine cycle (observe, plan, diff, apply) with the daemon's policy on what it applies. */
  private async cycle(causes: string[]): Promise<void> {
    const config = this.config;
    if (!config) throw new UplinkdError('config', 'no configuration loaded');
    const cause = joinCauses(causes);
    const asked = causes.filter((c) => this.requested.delete(c));
    this.log.debug('cycle', { cause });
    const flushed = this.linkEvents;
    this.linkEvents = new Set();
    this.echoes.clear();
    if (this.nftChanged) {
      // Notifications after this point (our own change below among them) make another cycle that reads it.
      this.nftChanged = false;
      this.nftKnown = undefined;
    }
    const health = this.opts.health?.verdicts() ?? {};
    // The planner leaves out what depends on an object the kernel refused last cycle (src/plan/planner.ts).
    const refused = new Set(this.refused.filter((f) => f.change.op !== 'del').map((f) => objectIdentity(f.change)));
    const observation = await observe(this.opts.port, config, {
      health,
      warn: (file, message) => this.log.warn('lease', { file, msg: message }),
      readLeases: this.opts.readLeases,
      retired: this.retired,
      nft: this.nftKnown ? { known: this.nftKnown } : this.opts.nft,
      refused,
    });
    if (!this.nftKnown) this.nftCheckedAt = this.now();
    // Nexthops other programs' routes use are kept: deleting one would make the kernel delete those routes.
    const cycle = await guardCycle(this.opts.port, config, computeCycle(config, observation));
    const { kernel, leases } = cycle.facts;
    this.cycles++;
    this.noteUplinks(cycle.plan.uplinks, cause);
    this.policies = servedPolicies(cycle.plan.policies);
    this.noteWarnings(cycle.plan.warnings);
    this.facts = summarizeFacts(kernel, leases, health);

    const desired = new DesiredIdentities(cycle.plan.desired, cycle.pinning.desired);
    // Links down or without carrier now: the kernel flushed (and refuses) what goes through them.
    for (const l of kernel.links) if (!l.up || !l.lowerUp) flushed.add(l.name);
    const nexthops = new Map<number, Nexthop>([...kernel.nexthops, ...cycle.plan.desired.nexthops].map((n) => [n.id, n]));
    const held = new Set<string>();
    const drift = new Set<string>();
    /** Whether to apply a change to the object `id` (described by `text`): not when it fights another program too often. */
    const admit = (id: string, text: string, kind: Change['kind'] | 'nft', change?: Change): boolean => {
      if (!this.present.has(id)) return true;
      if (change && throughDevices(change, flushed, nexthops)) return true; // the kernel's own flush, not drift
      // We had this exact object in place and nothing in the plan changed it: someone else did.
      const decision = this.limiter.restore(id, this.now(), text);
      if (decision.allow) {
        drift.add(id);
        return true;
      }
      held.add(id);
      if (decision.escalated) {
        this.log.warn('conflict', { object: text, restorations: decision.restorations, retry_in_ms: decision.backoffMs, msg: conflictHint(kind) });
        this.record('conflict', `${text}: ${conflictHint(kind)}`, cause);
      }
      this.wakeAt(decision.retryAt, `conflict backoff over for ${text}`);
      return false;
    };
    const leftovers = await this.retiredLeftovers(kernel, cycle.changes, desired);
    this.noteKept([...(cycle.kept ?? []), ...leftovers.kept].map(describeKept), cause);
    const netlink = [...cycle.changes, ...leftovers.changes]
      .filter((c) => c.op === 'del' || c.standIn || admit(objectIdentity(c), formatChange({ ...c, op: 'add' } as Change), c.kind, c));
    const nftChange = cycle.pinning.change;
    const nft = nftChange && (nftChange.op === 'delete' || admit(pinningIdentity(nftChange.ruleset), formatPinningChange(nftChange), 'nft'))
      ? nftChange : undefined;

    this.echoes.expect(netlink);
    const outcome = await applyChanges(this.opts.port, { netlink, ...(nft ? { nft } : {}) }, this.opts.nft);
    for (const f of [...outcome.failed, ...outcome.standInFailed ?? []]) this.echoes.forget(f.change);
    // Refused because a link is down right now: its next link event starts a cycle; no backoff, no error.
    const linkNow = new Set([...flushed, ...this.linkEvents]);
    const waiting = outcome.failed.filter((f) => waitingForLink(f.change, f.error, linkNow, nexthops));
    const result = { ...outcome, failed: outcome.failed.filter((f) => !waiting.includes(f)) };
    const applied = result.applied.length + (result.nftApplied ? 1 : 0);
    const failed = result.failed.length + (result.nftFailed ? 1 : 0);
    this.totals.applied += applied;
    this.totals.failed += failed;
    // A large cycle: one summary line, its first changes at info level, every change at debug level.
    const large = applied > CHANGES_DETAIL_MAX;
    if (large) {
      const kinds = changeSummary(result.applied, result.nftApplied ? [`${result.nftApplied.op} nft`] : []);
      this.log.info('apply-summary', { changes: applied, kinds, shown: CHANGES_SHOWN, msg: 'the other changes are logged at debug level', cause });
      this.record('apply-summary', `${applied} changes (${kinds})`, cause);
    }
    let logged = 0;
    const detail = () => !large || logged++ < CHANGES_SHOWN;
    if (result.nftApplied) this.logApplied(formatPinningChange(result.nftApplied), nftIdentity(result.nftApplied), drift, cause, detail());
    // A stand-in swap's steps (src/reconcile/diff.ts) are how a change is made, not changes of their own.
    for (const c of result.applied) this.logApplied(formatChange(c), objectIdentity(c), drift, cause, !c.standIn && detail());
    for (const f of result.failed) {
      this.log.error('apply-failed', { change: formatChange(f.change), error: f.error.message, cause });
      this.record('apply-failed', `${formatChange(f.change)}: ${f.error.message}`, cause);
    }
    for (const w of waiting) this.log.debug('waiting-link', { change: formatChange(w.change), error: w.error.message, cause });
    for (const f of outcome.standInFailed ?? []) this.log.debug('stand-in-failed', { change: formatChange(f.change), error: f.error.message, cause });
    // A swap cut short may leave stand-ins behind, which the next cycle deletes; its notifications start none.
    if (outcome.standInFailed?.length) this.markDirty('a stand-in step was refused: remove what is left of the swap');
    if (waiting.length > 0) {
      const text = `${waiting.length} change(s) wait for their link to come up`;
      this.log.info('waiting-link', { changes: waiting.length, msg: text });
      this.record('waiting-link', text, cause);
    }
    this.notePinning(config, observation.nft, result, cause);
    if (applied === 0 && failed === 0) {
      // A hook that ran and found nothing to do says so once; the daemon's own no-op cycles stay at debug level.
      if (asked.length > 0) this.log.info('in-sync', { cause, msg: `resync asked for (${joinCauses(asked)}): nothing to change` });
      else this.log.debug('in-sync', { cause });
    }

    // Held-back objects stay in: when their backoff ends, re-adding them is drift again.
    this.present = desired;
    for (const f of outcome.failed) this.present.delete(objectIdentity(f.change));
    if (cycle.pinning.desired && (result.nftFailed || observation.nft.kind === 'unavailable')) this.present.delete(pinningIdentity(cycle.pinning.desired));
    if (failed === 0) this.retired = undefined;
    if (failed > 0) this.scheduleRetry(`${failed} change(s) failed`);
    else this.retryDelay = 0;
    this.refused = result.failed;
    // Accepted now: what the plan left out because of its refusal can go in, in another cycle.
    if (result.applied.some((c) => c.op !== 'del' && refused.has(objectIdentity(c)))) this.markDirty('a change the kernel refused before was accepted: plan what depends on it');
    // A nexthop refused now: what depends on it (the group naming it, the default on the group; src/plan/planner.ts)
    // is planned without it at once, not at the retry: the notifications of this cycle's own changes start no cycle.
    if (result.failed.some((f) => f.change.kind === 'nexthop' && f.change.op !== 'del' && !refused.has(objectIdentity(f.change)))) {
      this.markDirty('the kernel refused a nexthop: plan what depends on it without it');
    }
    this.collisions = cycle.plan.collisions.map((c) => `${c.uplink ?? 'balanced default'}: ${c.text}`);
    this.inSync = failed === 0 && held.size === 0 && waiting.length === 0 && this.collisions.length === 0 && this.kept.length === 0;
    this.last = { at: this.iso(this.now()), causes: capCauses(causes), applied, failed, deferred: held.size + waiting.length };
  }

  /** `shown`: at info level and in status's events; otherwise at debug level only (a large cycle's rest). */
  private logApplied(text: string, id: string | undefined, drift: Set<string>, cause: string, shown: boolean): void {
    const isDrift = id !== undefined && drift.has(id);
    const fields: LogFields = { change: text, cause };
    if (isDrift) fields.reason = 'drift: restoring an object uplinkd owns';
    if (!shown) {
      this.log.debug('apply', fields);
      return;
    }
    this.log.info('apply', fields);
    this.record('apply', text, isDrift ? `drift; ${cause}` : cause);
  }

  /**
   * Flow pinning's state after a cycle: the table as the cycle left it (read again next cycle when
   * the nft change failed), its status line, and a warning when it changed to one. An nft failure
   * leaves pinning off and routing going.
   */
  private notePinning(config: Config, observed: ObservedPinning, result: { nftApplied?: PinningChange; nftFailed?: UplinkdError }, cause: string): void {
    if (result.nftFailed) {
      const message = result.nftFailed.message;
      this.log.error('pinning', { error: message, msg: 'flow pinning is off; routing goes on', cause });
      this.record('apply-failed', message, cause);
      this.nftKnown = undefined;
      this.pinning = { status: `flow pinning: off: ${message}`, ...(config.pinning?.enabled ? { inPlace: false } : {}) };
      return;
    }
    this.nftKnown = result.nftApplied ? observedAfter(result.nftApplied) : observed;
    if (result.nftApplied) this.nftCheckedAt = this.now();
    const now = planPinning(config, this.nftKnown);
    if (now.warning && now.status !== this.pinning.status) this.log.warn('pinning', { msg: now.warning });
    const inPlace = pinningInPlace(now);
    const status = inPlace
      ? now.status.replace(/^flow pinning: in place/, `flow pinning: in place at the last check ${clock(wallTime(this.nftCheckedAt, this.now, this.wallNow))}${checkEvery(config, this.unwatchNft !== undefined)}`)
      : now.status;
    this.pinning = { status, ...(inPlace !== undefined ? { inPlace } : {}) };
  }

  /**
   * After a reload that changed the protocol: what the old config owned and the new one does not want, but nexthops
   * other programs use (`kept`).
   */
  private async retiredLeftovers(kernel: KernelState, changes: Change[], desired: DesiredIdentities): Promise<{ changes: Change[]; kept: KeptNexthop[] }> {
    const retired = this.retired;
    if (!retired) return { changes: [], kept: [] };
    const planned = new Set(changes.map(objectIdentity));
    const leftovers = (keep?: ReadonlySet<number>) => teardownChanges(retired, kernel, keep)
      .filter((c) => !planned.has(objectIdentity(c)) && !desired.has(objectIdentity(c)));
    return keepNexthopsInUse(this.opts.port, leftovers(), [retired.protocol, this.config?.protocol ?? retired.protocol], leftovers);
  }

  /** Logs (warn) and records the kept nexthops when they differ from the last cycle's; status shows them. */
  private noteKept(kept: string[], cause: string): void {
    for (const k of kept) {
      if (this.kept.includes(k)) continue;
      this.log.warn('nexthop-kept', { msg: k, cause });
      this.record('nexthop-kept', k, cause);
    }
    this.kept = kept;
  }

  private noteUplinks(uplinks: UplinkStatus[], cause: string): void {
    const before = new Map(this.planned.all().map((u) => [u.name, u]));
    for (const u of uplinks) {
      const old = before.get(u.name);
      const summary = uplinkSummary(u);
      if (old && uplinkSummary(old) === summary) continue;
      this.log.info('uplink', { uplink: u.name, state: u.state, default: u.inDefault, address: u.address, gateway: u.gateway, why: u.reason, cause });
      this.record('uplink', `${u.name}: ${summary}`, cause);
    }
    this.planned.set(uplinks);
  }

  private noteWarnings(warnings: string[]): void {
    for (const w of warnings) if (!this.warnings.includes(w)) this.log.warn('plan', { msg: w });
    this.warnings = warnings;
  }

  private record(event: string, text: string, cause?: string): void {
    this.events.push({ at: this.iso(this.now()), event, text, ...(cause ? { cause } : {}) });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  /**
   * Subscribes to `table ip uplinkd`'s changes: each makes a cycle that reads the table. When that cannot be had, says
   * so once; the periodic resync still checks the table.
   */
  private watchNftables(): (() => void) | undefined {
    if (!this.opts.nftWatch) return undefined;
    try {
      return this.opts.nftWatch(
        (cause) => {
          this.nftChanged = true;
          this.markDirty(cause);
        },
        (err) => this.log.warn('nft-events', { msg: err.message }),
      );
    } catch (err) {
      const every = this.config && this.config.daemon.resyncMs > 0 ? `every ${this.config.daemon.resyncMs / 1000} s` : 'at reloads';
      this.log.warn('nft-events', { msg: `cannot follow nftables changes (${err instanceof Error ? err.message : String(err)}): table ip uplinkd is checked ${every} only` });
      return undefined;
    }
  }

  private scheduleResync(): void {
    const ms = this.config?.daemon.resyncMs ?? 0;
    if (ms <= 0 || this.stopped) return;
    this.resyncTimer = this.timers.setTimeout(() => {
      this.watchLeaseDirs(); // directories that appeared since (a DHCP client started late)
      this.nftKnown = undefined; // a firewall reload (`nft flush ruleset`) sends no event: look again
      this.markDirty('periodic resync');
      this.scheduleResync();
    }, ms);
  }

  private wakeAt(at: number, cause: string): void {
    if (this.wakeups.has(at) || this.stopped) return;
    const handle = this.timers.setTimeout(() => {
      this.wakeups.delete(at);
      this.markDirty(cause);
    }, Math.max(0, at - this.now()));
    this.wakeups.set(at, handle);
  }

  /**
   * A lease change does not always show in the kernel (dhclient renewing with a new
   * gateway but an unchanged address): watch the lease directories too.
   */
  private watchLeaseDirs(): void {
    if (this.opts.watchLeases === false || !this.config) return;
    for (const glob of this.config.paths.leases) {
      const dir = path.dirname(glob);
      if (isGlob(dir) || this.watchers.has(dir)) continue;
      const matches = nameMatcher(path.basename(glob));
      try {
        const watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
          if (name && matches(String(name))) this.markDirty(`lease file ${path.join(dir, String(name))} changed`);
        });
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // The directory does not exist (yet): the periodic resync retries.
      }
    }
  }
}

/** Ownership is the protocol number (src/reconcile/diff.ts): only a new one hides the old objects. */
function ownershipChanged(a: Config, b: Config): boolean {
  return a.protocol !== b.protocol;
}

/** HH:MM:SS UTC of an epoch-ms time. */
function clock(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

/** When the nftables table is read again (on its notifications, else at the periodic resync), for status. */
function checkEvery(config: Config, followed: boolean): string {
  if (followed) return ' (changes followed by nftables notifications)';
  const ms = config.daemon.resyncMs;
  return ms > 0 ? ` (checked every ${ms / 1000} s)` : ' (checked at start and reloads)';
}

function uplinkSummary(u: UplinkStatus): string {
  const addr = u.address ? `${u.address}/${u.prefixlen}` : 'no address';
  return `${u.state}, ${u.inDefault ? `in default (weight ${u.weight})` : 'not in default'}, ${addr}, gateway ${describeDefaultPath(u)} (${u.reason})`;
}

/**
 * The identities (objectIdentity, pinningIdentity) of everything a cycle wants in place: its routes, rules, nexthops
 * and nftables table. Built on first use: encoding thousands of objects is most of a cycle at 64 uplinks, and a
 * cycle that finds nothing to change never asks (only a change is checked against the previous cycle's set).
 */
class DesiredIdentities {
  private ids: Set<string> | undefined;

  constructor(private readonly desired?: DesiredState, private readonly table?: PinningRuleset) {}

  private all(): Set<string> {
    if (this.ids) return this.ids;
    const ids = new Set<string>();
    if (this.desired) {
      for (const route of this.desired.routes) ids.add(objectIdentity({ kind: 'route', route }));
      for (const rule of this.desired.rules) ids.add(objectIdentity({ kind: 'rule', rule }));
      for (const nexthop of this.desired.nexthops) ids.add(objectIdentity({ kind: 'nexthop', nexthop }));
    }
    if (this.table) ids.add(pinningIdentity(this.table));
    return (this.ids = ids);
  }

  has(id: string): boolean {
    return this.all().has(id);
  }

  delete(id: string): void {
    this.all().delete(id);
  }
}

function nftIdentity(change: PinningChange): string | undefined {
  return change.op === 'install' ? pinningIdentity(change.ruleset) : undefined;
}

function summarizeFacts(kernel: KernelState, leases: Lease[], health: Record<string, HealthVerdict>): DaemonStatus['facts'] {
  return {
    leases,
    health,
    links: kernel.links.map((l) => ({ name: l.name, up: l.up, carrier: l.lowerUp })),
    addresses: kernel.addresses.map((a) => `${a.address}/${a.prefixlen} on ${a.dev}${a.dynamic ? ' (dynamic)' : ''}`),
  };
}
