// What follows a health change, after the daemon has replanned: the connections of an uplink
// that went down are cleared (once the default route no longer uses it, so that the flows'
// next packets take a live uplink), then the hooks run. Wiring in the daemon:
//   health.on('change', healthActions({ hooksDir: () => config.paths.hooksDir, log, afterReplan: () => daemon.whenIdle() }));
import type { Logger } from '../log';
import { clearUplinkConntrack, type CommandRunner } from './conntrack';
import { HookQueue } from './hooks';
import type { HealthChange } from './monitor';

export interface HealthActionOptions {
  /** The hooks directory of the current config (it may change on reload). */
  hooksDir: () => string;
  log: Logger;
  /** Resolves once the daemon has applied the plan that follows the change. */
  afterReplan: () => Promise<void>;
  hookTimeoutMs?: number;
  /** Runs conntrack (tests inject a fake). */
  runCommand?: CommandRunner;
}

/** A 'change' listener; the returned promise (for tests) settles when the actions are done. */
export function healthActions(options: HealthActionOptions): (change: HealthChange) => Promise<void> {
  // One queue: hooks of successive changes never overlap and run in the order of the changes.
  const queue = new HookQueue(options.hooksDir, { log: options.log, timeoutMs: options.hookTimeoutMs });
  return async (change) => {
    await options.afterReplan();
    const address = change.endpoint?.address;
    if (change.to === 'down' && address) {
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
