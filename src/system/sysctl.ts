// The one sysctl uplinkd sets. /proc/sys/net is per network namespace: the value read
// and written is that of the namespace the process runs in.
import { promises as fs } from 'node:fs';
import { UplinkdError } from '../errors';

export const MULTIPATH_HASH_POLICY = '/proc/sys/net/ipv4/fib_multipath_hash_policy';

/** Sets net.ipv4.fib_multipath_hash_policy (0 = L3, 1 = L4); writes only on change. */
export async function setMultipathHashPolicy(value: 0 | 1, file = MULTIPATH_HASH_POLICY): Promise<{ previous: number }> {
  let previous: number;
  try {
    previous = Number((await fs.readFile(file, 'utf8')).trim());
    if (previous !== value) await fs.writeFile(file, `${value}\n`);
  } catch (err) {
    throw new UplinkdError('io', `cannot set ${file}: ${(err as Error).message}`, {
      errno: (err as NodeJS.ErrnoException).code,
      cause: err,
    });
  }
  return { previous };
}
