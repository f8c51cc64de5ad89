// What follows a health change, after the daemon has replanned: the hooks run, and the
// connections of an uplink that went down are cleared (once the default route no longer uses it,
// so that the flows' next packets take a live uplink). Clearing is only for a path confirmed
// dead, and never the cause of a total outage:
//   - the interface received nothing while the verdict was confirmed, and still receives nothing
//     after the replan and after the grace period (so no connection through it is receiving);
//   - the down held for CLEAR_GRACE_MS (the same episode: not up again meanwhile);
//   - the uplink is not kept in the default as the last resort, and another uplink really carries
//     the default (up, in the default, not as the last resort): when every uplink fails within a
//     second (a shared target goes silent, a total outage), their connections have nowhere better to go.
// A slow, degraded or only-targets-silent uplink keeps its flows. Cleared are the flows whose
// replies go to the uplink's address (local and masqueraded ones) and the flows carrying its
// pinning mark (routed LAN flows and provider-side NAT, which no address identifies). Wiring in the daemon:
//   health.on('change', healthActions({ hooksDir: () => config.paths.hooksDir, log, afterReplan: () => daemon.whenIdle(),
//     uplinks: () => daemon.status().uplinks, pinMark: (name) => ... }));
import type { Logger } from '../log';
import type { HealthVerdict } from '../model/facts';
import { clearMarkedConntrack, clearUplinkConntrack, type CommandRunner } from './conntrack';
import { HookQueue } from './hooks';
import type { HealthChange } from './monitor';
import { RX_ALLOWANCE } from './state';
import { readNetDev } from './traffic';

/** A down verdict must hold this long before its uplink's connections are cleared. */
export const CLEAR_GRACE_MS = 2_000;

/** What the actions read of an uplink's planned state (the daemon's UplinkStatus fits). */
export interface UplinkDefaultState {
  name: string;
  health: HealthVerdict;
  inDefault: boolean;
  /** Down, but kept in the default because every uplink is down. */
  lastResort?: boolean;
}

export interface HealthActionOptions {
  /** The hooks directory of the current config (it may change on reload). */
  hooksDir: () => string;
  log: Logger;
  /** Resolves once the daemon has applied the plan that follows the change. */
  afterReplan: () => Promise<void>;
  hookTimeoutMs?: number;
  /** Runs conntrack (tests inject a fake). */
  runCommand?: CommandRunner;
  /** Every uplink's state in the plan applied now. */
  uplinks: () => readonly UplinkDefaultState[];
  /** The uplink's pinning mark and the mask of uplinkd's mark bits (docs/pinning.md); undefined without pinning. */
  pinMark?: (uplink: string) => { mark: number; mask: number } | undefined;
  /** Received packets of an interface now (default /proc/net/dev); undefined when unknown. */
  rxPackets?: (ifname: string) => number | undefined;
  /** Default CLEAR_GRACE_MS. */
  graceMs?: number;
}

/** A 'change' listener; the returned promise (for tests) settles when the actions are done. */
export function healthActions(options: HealthActionOptions): (change: HealthChange) => Promise<void> {
  // One queue: hooks of successive changes never overlap and run in the order of the changes.
  const queue = new HookQueue(options.hooksDir, { log: options.log, timeoutMs: options.hookTimeoutMs });
  // Per uplink, the number of its last change: a deferred clearing belongs to one down episode.
  const episodes = new Map<string, number>();
  let changes = 0;
  return async (change) => {
    // The daemon hears of the change in the same emit, maybe after this listener: ask whether it
    // is idle only once every listener has run, or the flows would be cleared (and a conntrack
    // process started) before the replan, and re-created through the dead uplink.
    await Promise.resolve();
    const episode = ++changes;
    episodes.set(change.uplink, episode);
    await options.afterReplan();
    const clearing = change.to === 'down' && change.endpoint?.address ? clearWhenConfirmed(change, episode) : undefined;
    await queue.run(change);
    await clearing;
  };

  async function clearWhenConfirmed(change: HealthChange, episode: number): Promise<void> {
    const address = change.endpoint?.address as string;
    const early = whySpare(change, 0);
    if (early) {
      options.log.info('conntrack_kept', { uplink: change.uplink, address, why: early });
      return;
    }
    const graceMs = options.graceMs ?? CLEAR_GRACE_MS;
    await new Promise((resolve) => setTimeout(resolve, graceMs));
    await options.afterReplan();
    // Up again (or changed otherwise) within the grace period: a blip, not a dead path.
    if (episodes.get(change.uplink) !== episode) {
      options.log.info('conntrack_kept', { uplink: change.uplink, address, why: `it did not stay down for ${graceMs} ms` });
      return;
    }
    const spare = whySpare(change, graceMs);
    if (spare) {
      options.log.info('conntrack_kept', { uplink: change.uplink, address, why: spare });
      return;
    }
    const pin = options.pinMark?.(change.uplink);
    try {
      const byAddress = await clearUplinkConntrack(address, options.runCommand);
      const byMark = pin ? await clearMarkedConntrack(pin.mark, pin.mask, options.runCommand) : undefined;
      options.log.info('conntrack_cleared', {
        uplink: change.uplink, address, flows: byAddress + (byMark ?? 0), ...(byMark !== undefined && { pinned: byMark }),
      });
    } catch (err) {
      options.log.warn('conntrack_cleared', { uplink: change.uplink, address, problem: (err as Error).message });
    }
  }

  /**
   * Why the connections of an uplink that went down must stay, or undefined when they may be
   * cleared; `sinceMs` after the verdict (a stray ARP packet a second is not a receiving connection).
   */
  function whySpare(change: HealthChange, sinceMs: number): string | undefined {
    const all = options.uplinks();
    const self = all.find((u) => u.name === change.uplink);
    if (self?.lastResort) return 'kept in the default as the last resort';
    if (self && self.health !== 'down') return `it is ${self.health} again`;
    if (!change.pathSilent) return 'packets still arrived through the interface: the targets are silent, not the path';
    const ifname = change.endpoint?.interface;
    const rxNow = ifname ? (options.rxPackets ?? ((n: string) => readNetDev().get(n)?.rxPackets))(ifname) : undefined;
    if (rxNow !== undefined && change.rxPackets !== undefined && rxNow - change.rxPackets > RX_ALLOWANCE * (1 + Math.ceil(sinceMs / 1000))) {
      return `the interface received ${rxNow - change.rxPackets} packets since the verdict: connections are still receiving`;
    }
    const carriers = all.filter((u) => u.name !== change.uplink && u.inDefault && !u.lastResort && u.health !== 'down');
    if (carriers.length === 0) return 'no other uplink is up to take its connections (every uplink failed: a shared cause, not this path)';
    return undefined;
  }
}
