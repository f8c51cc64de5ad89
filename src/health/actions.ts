// What follows a health change, after the daemon has replanned: the connections of an uplink
// that went down are cleared (once the default route no longer uses it, so that the flows'
// next packets take a live uplink), then the hooks run. Clearing is only for a path confirmed
// dead: the interface received nothing while the verdict was confirmed, still receives nothing
// after the replan (so no connection through it is receiving), and the uplink is not kept in
// the default as the last resort. A slow, degraded or only-targets-silent uplink keeps its flows. Wiring in the daemon:
//   health.on('change', healthActions({ hooksDir: () => config.paths.hooksDir, log, afterReplan: () => daemon.whenIdle() }));
import type { Logger } from '../log';
import { clearUplinkConntrack, type CommandRunner } from './conntrack';
import { HookQueue } from './hooks';
import type { HealthChange } from './monitor';
import { RX_ALLOWANCE } from './state';
import { readNetDev } from './traffic';

/** Why the connections of an uplink that went down must stay, or undefined when they may be cleared. */
function whySpare(change: HealthChange, options: HealthActionOptions): string | undefined {
  if (options.lastResort?.(change.uplink)) return 'kept in the default as the last resort';
  if (!change.pathSilent) return 'packets still arrived through the interface: the targets are silent, not the path';
  const ifname = change.endpoint?.interface;
  const rxNow = ifname ? (options.rxPackets ?? ((n: string) => readNetDev().get(n)?.rxPackets))(ifname) : undefined;
  if (rxNow !== undefined && change.rxPackets !== undefined && rxNow - change.rxPackets > RX_ALLOWANCE) {
    return `the interface received ${rxNow - change.rxPackets} packets since the verdict: connections are still receiving`;
  }
  return undefined;
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
  /** True when the plan keeps the uplink in the default as the last resort (its flows must stay). */
  lastResort?: (uplink: string) => boolean;
  /** Received packets of an interface now (default /proc/net/dev); undefined when unknown. */
  rxPackets?: (ifname: string) => number | undefined;
}

/** A 'change' listener; the returned promise (for tests) settles when the actions are done. */
export function healthActions(options: HealthActionOptions): (change: HealthChange) => Promise<void> {
  // One queue: hooks of successive changes never overlap and run in the order of the changes.
  const queue = new HookQueue(options.hooksDir, { log: options.log, timeoutMs: options.hookTimeoutMs });
  return async (change) => {
    // The daemon hears of the change in the same emit, maybe after this listener: ask whether it
    // is idle only once every listener has run, or the flows would be cleared (and a conntrack
    // process started) before the replan, and re-created through the dead uplink.
    await Promise.resolve();
    await options.afterReplan();
    const address = change.endpoint?.address;
    const spare = change.to === 'down' && address ? whySpare(change, options) : undefined;
    if (spare) options.log.info('conntrack_kept', { uplink: change.uplink, address, why: spare });
    else if (change.to === 'down' && address) {
      try {
        const deleted = await clearUplinkConntrack(address, options.runCommand);
        options.log.info('conntrack_cleared', { uplink: change.uplink, address, flows: deleted });
      } catch (err) {
        options.log.warn('conntrack_cleared', { uplink: change.uplink, address, problem: (err as Error).message });
      }
    }
    await queue.run(change);
  };
}
