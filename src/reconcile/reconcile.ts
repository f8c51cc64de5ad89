// Applies an ordered change list through a KernelPort. A failed change does not stop the rest:
// the next planning pass sees what is left and tries again; logging is the caller's.
import { UplinkdError } from '../errors';
import type { KernelPort } from '../kernel/port';
import type { Change } from '../model/types';

export interface ReconcileResult {
  applied: Change[];
  failed: { change: Change; error: UplinkdError }[];
}

export async function reconcile(port: KernelPort, changes: Change[]): Promise<ReconcileResult> {
  const result: ReconcileResult = { applied: [], failed: [] };
  for (const change of changes) {
    try {
      await port.apply(change);
      result.applied.push(change);
    } catch (e) {
      const error = e instanceof UplinkdError ? e : new UplinkdError('kernel', e instanceof Error ? e.message : String(e), { cause: e });
      result.failed.push({ change, error });
    }
  }
  return result;
}
