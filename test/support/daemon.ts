// Test helpers for the daemon's unit tests: a virtual clock/timer queue and a port wrapper
// that counts what the daemon does and can hide events (as a netlink overrun would).
import type { KernelEvent, KernelPort, RouteInterest } from '../../src/kernel/port';
import type { Change, KernelState, Nexthop, Route } from '../../src/model/types';
import { UplinkdError } from '../../src/errors';
import type { NftWatch } from '../../src/nft/events';
import type { NftResult, NftRunner } from '../../src/nft/nft';
import { DELETE_SCRIPT } from '../../src/nft/ruleset';
import { writtenRuleExpr } from '../../src/nft/rule-effect';
import type { Timers } from '../../src/daemon/daemon';
import type { ServedStatus } from '../../src/daemon/http';

/** Timers on a virtual clock: nothing fires until advance(). */
export class VirtualTimers implements Timers {
  now = Date.UTC(2024, 0, 1);
  private queue: { id: number; due: number; fn: () => void }[] = [];
  private nextId = 1;

  /** Queues `fn` to run when the virtual clock reaches now + `ms` (milliseconds, negative as 0); returns a handle. */
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.queue.push({ id, due: this.now + Math.max(0, ms), fn });
    return id;
  }

  /** Cancels a queued timer; an unknown handle is ignored. */
  clearTimeout(handle: unknown): void {
    this.queue = this.queue.filter((t) => t.id !== handle);
  }

  /** Moves the clock forward, firing due timers in order and letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    await settle();
    for (;;) {
      const next = this.queue.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!next) break;
      this.queue = this.queue.filter((t) => t !== next);
      this.now = next.due;
      next.fn();
      await settle();
    }
    this.now = Math.max(this.now, target); // never backwards: a callback may have moved the clock past the target
  }
}

/** Lets promise chains and immediate callbacks run to completion (the fake kernel never waits on I/O). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A KernelPort wrapper for daemon tests: records every change applied (`writes`) and snapshot taken, can mute events
 * (`muted`) and replace apply()'s outcome (`applyHook`); otherwise passes everything to `kernel`.
 */
export class CountingPort implements KernelPort {
  writes: Change[] = [];
  snapshots = 0;
  /** While true, kernel events are not delivered (lost, as after ENOBUFS). */
  muted = false;

  constructor(readonly kernel: KernelPort) {}

  /** Counts the snapshot and takes it from the wrapped kernel. */
  snapshot(interest?: RouteInterest): Promise<KernelState> {
    this.snapshots++;
    return this.kernel.snapshot(interest);
  }

  /** The wrapped kernel's nexthops and the routes through the devices of `ids`. */
  nexthopUsers(ids: readonly number[]): Promise<{ nexthops: Nexthop[]; routes: Route[] }> {
    return this.kernel.nexthopUsers(ids);
  }

  /** When set and it returns a promise, that is apply()'s outcome instead of the kernel's (lost answers, refusals). */
  applyHook: ((change: Change) => Promise<void> | undefined) | undefined;

  /** Records the change, then applies it through `applyHook` when that returns a promise, else the wrapped kernel. */
  apply(change: Change): Promise<void> {
    this.writes.push(change);
    return this.applyHook?.(change) ?? this.kernel.apply(change);
  }

  /** The wrapped kernel's events, dropped while `muted`; overruns always pass. */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: () => void): () => void {
    return this.kernel.subscribe((e) => {
      if (!this.muted) onEvent(e);
    }, onOverrun);
  }

  /** Closes the wrapped kernel. */
  close(): void {
    this.kernel.close();
  }
}

/** The rules of an nft script as uplinkd writes it (`\t\t<statements> comment "<why> #<hash>"` inside `\tchain NAME {`). */
function rulesOf(script: string): { chain: string; comment: string; expr: unknown[] }[] {
  let chain = '';
  return script.split('\n').flatMap((line) => {
    const c = /^\tchain (\S+) \{$/.exec(line);
    if (c) chain = c[1]!;
    const r = /^\t\t(.*) comment "([^"]*#[0-9a-f]{16})"$/.exec(line);
    return r ? [{ chain, comment: r[2]!, expr: writtenRuleExpr(r[1]!) }] : [];
  });
}

/** The time sampleStatus() describes, epoch ms. */
export const SAMPLE_NOW = Date.parse('2026-11-21T10:00:00Z');

/**
 * A fake `nft` holding only `table ip uplinkd`: `-f -` installs the script given (its rules are the
 * lines whose comment ends in `#<hash>`) or deletes the table (DELETE_SCRIPT); `-j list table ip uplinkd`
 * answers as nft does (JSON, or exit 1 "No such file or directory"). Records every call.
 */
export class FakeNft {
  /** The rules of the table in place (chain, comment and statements as `nft -j` prints them); undefined: no table. */
  table: { chain: string; comment: string; expr: unknown[] }[] | undefined;
  /** Its chains, as `nft -j list` describes them. */
  chains: { name: string; type: string; hook: string; prio: number; policy: string }[] = [];
  calls: { args: string[]; input?: string }[] = [];
  /** While set, `nft -f` fails with this message (exit 1), as nft refusing a ruleset. */
  refuse: string | undefined;

  /** nft processes running now, and the most that ever ran at once. */
  active = 0;
  maxActive = 0;

  readonly run: NftRunner = async (args, input) => {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await new Promise((resolve) => setImmediate(resolve)); // a process takes a while
      return this.answer(args, input);
    } finally {
      this.active--;
    }
  };

  private answer(args: string[], input: string | undefined): NftResult {
    this.calls.push({ args, ...(input !== undefined ? { input } : {}) });
    if (args[0] === '-j' && args[1] === 'list') {
      if (!this.table) return { code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist table ip uplinkd\n' };
      const rules = this.table.map((r) => ({ rule: { family: 'ip', table: 'uplinkd', ...r } }));
      const chains = this.chains.map((chain) => ({ chain: { family: 'ip', table: 'uplinkd', ...chain } }));
      return { code: 0, stdout: JSON.stringify({ nftables: [{ table: { family: 'ip', name: 'uplinkd' } }, ...chains, ...rules] }), stderr: '' };
    }
    if (args[0] === '-f') {
      if (this.refuse) return { code: 1, stdout: '', stderr: this.refuse };
      if (input === DELETE_SCRIPT) this.table = undefined;
      else this.table = rulesOf(input ?? '');
      // Base chains as `nft -j list` prints them: the priority's name as its number (nft(8), family ip).
      this.chains = input === DELETE_SCRIPT ? [] : [...(input ?? '').matchAll(/chain (\S+) \{\n\t\ttype (\S+) hook (\S+) priority (\S+); policy (\S+);/g)]
        .map(([, name, type, hook, prio, policy]) => ({ name: name!, type: type!, hook: hook!, prio: ({ mangle: -150, srcnat: 100 } as Record<string, number>)[prio!] ?? Number(prio), policy: policy! }));
      this.notify('nftables: table ip uplinkd changed (deltable, newchain, newrule, newtable) by nft');
      return { code: 0, stdout: '', stderr: '' };
    }
    return { code: 2, stdout: '', stderr: `fake nft: unexpected ${args.join(' ')}` };
  }

  /** Another program's `nft flush ruleset` (a firewall reload): our table is gone, notified to watch()'s subscribers. */
  flushRuleset(): void {
    this.table = undefined;
    this.notify('nftables: table ip uplinkd changed (delchain, delrule, deltable) by nft');
  }

  /** Subscribers of watch(); notified after the change, as the kernel's notifications arrive after the commit. */
  private readonly listeners = new Set<(cause: string) => void>();
  /** Set: watch() throws this, as when NETLINK_NETFILTER cannot be opened. */
  watchRefused: string | undefined;

  /** An NftWatch (src/nft/events.ts) fed by this fake's changes; the daemon gets it only where a test passes it. */
  readonly watch: NftWatch = (onChange) => {
    if (this.watchRefused) throw new UplinkdError('netlink', this.watchRefused);
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  };

  private notify(cause: string): void {
    for (const l of this.listeners) setImmediate(() => l(cause));
  }

  /** The `nft -f` calls made (installs and deletes). */
  writes(): string[] {
    return this.calls.filter((c) => c.args[0] === '-f').map((c) => c.input ?? '');
  }
}

/**
 * A daemon status as the HTTP endpoint serves it, at SAMPLE_NOW: isp1 ready and monitored (up),
 * isp2 waiting and monitored but not probed yet (unknown, no RTT/loss), pinning in place.
 */
export function sampleStatus(): ServedStatus {
  return {
    pid: 4242,
    configFile: '/etc/uplinkd/uplinkd.yaml',
    startedAt: '2026-11-21T09:00:00.000Z',
    cycles: 17,
    lastCycle: { at: '2026-11-21T09:59:58.000Z', causes: ['periodic resync'], applied: 0, failed: 0, deferred: 0 },
    inSync: true,
    totals: { applied: 23, failed: 1 },
    uplinks: [
      {
        name: 'isp1', interface: 'if1', table: 1001, dhcp: false, state: 'ready', reason: 'ok',
        address: '198.51.100.2', prefixlen: 24, network: '198.51.100.0/24', gateway: '198.51.100.1', gatewaySource: 'config',
        health: 'up', weight: 1, tier: 1, inDefault: true,
      },
      { name: 'isp2', interface: 'if2', table: 1002, dhcp: true, state: 'waiting', reason: 'no address on if2 yet', health: 'unknown', weight: 3, tier: 1, inDefault: false },
    ],
    warnings: [],
    facts: { leases: [], health: { isp1: 'up', isp2: 'unknown' }, links: [], addresses: [] },
    health: {
      isp1: { state: 'up', since: SAMPLE_NOW - 90_500, rttMs: 12.345, jitterMs: 0.75, lossPct: 2, lastError: null, reason: 'test', targets: [], suspect: null },
      isp2: { state: 'unknown', since: SAMPLE_NOW - 1_000, rttMs: null, jitterMs: null, lossPct: null, lastError: null, reason: 'test', targets: [], suspect: null },
    },
    conflicts: [
      { object: 'ip rule add from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117', restorations: 6, backoffMs: 2000, retryAt: '2026-11-21T10:00:02.000Z' },
      { object: 'ip route add default via 198.51.100.1 dev if1 table 1001 proto 117', restorations: 1, backoffMs: 0 },
    ],
    events: [
      { at: '2026-11-21T09:00:00.100Z', event: 'apply', text: 'ip rule add from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117', cause: 'start: adopt and converge' },
      { at: '2026-11-21T09:30:00.000Z', event: 'health', text: 'isp1: unknown -> up', cause: 'first good round' },
    ],
    pinning: 'flow pinning: in place (table ip uplinkd; isp1=0x00010000 isp2=0x00020000, mask 0x00ff0000)',
    pinningInPlace: true,
  };
}
