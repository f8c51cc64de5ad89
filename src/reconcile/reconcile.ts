// Applies an ordered change list through a KernelPort. A failed change does not stop the rest:
// the next planning pass sees what is left and tries again; logging is the caller's.
import { UplinkdError } from '../errors';
import type { KernelPort } from '../kernel/port';
import type { Change } from '../model/types';

/** What reconcile() did: the changes the kernel took and those it refused, each in change order. */
export interface ReconcileResult {
  applied: Change[];
  failed: { change: Change; error: UplinkdError }[];
}

/**
 * Changes handed to the port before the first of them has to finish: the netlink client's largest window
 * (MAX_REQUEST_WINDOW in src/netlink/socket.ts), which queues the rest itself when its receive buffer is smaller.
 */
export const RECONCILE_WINDOW = 4096;

/**
 * Calls port.apply() for the changes in their order (diff()'s order, which this keeps) without waiting for each,
 * at most `window` (a count of changes, default RECONCILE_WINDOW) unfinished at a time: a port that sends in call
 * order (KernelPort.apply) keeps the kernel seeing them in order, and a later change that depends on a failed one
 * fails as it would one by one. Never throws: each refused change is in `failed` with its UplinkdError (a thrown
 * non-UplinkdError becomes code 'kernel'); the port tolerates EEXIST on add and ENOENT on del itself.
 * Results are in change order whatever order they finished in.
 */
export async function reconcile(port: KernelPort, changes: Change[], window = RECONCILE_WINDOW): Promise<ReconcileResult> {
  const errors: (UplinkdError | undefined)[] = new Array(changes.length);
  let next = 0;
  // Each worker takes the next change when its last one finished; apply() is called synchronously
  // after next++, so changes are handed over in index order.
  const worker = async (): Promise<void> => {
    while (next < changes.length) {
      const i = next++;
      try {
        await port.apply(changes[i]!);
      } catch (e) {
        errors[i] = e instanceof UplinkdError ? e : new UplinkdError('kernel', e instanceof Error ? e.message : String(e), { cause: e });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, window), changes.length) }, worker));
  const result: ReconcileResult = { applied: [], failed: [] };
  changes.forEach((change, i) => {
    const error = errors[i];
    if (error) result.failed.push({ change, error });
    else result.applied.push(change);
  });
  return result;
}
