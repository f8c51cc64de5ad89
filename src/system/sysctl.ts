// The multipath hash sysctls, the only ones uplinkd sets. /proc/sys/net is per network namespace:
// the values read and written are those of the namespace the process runs in.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../errors';

/** Where net.ipv4's sysctls live (per namespace). */
export const IPV4_SYSCTL_DIR = '/proc/sys/net/ipv4';

/**
 * fib_multipath_hash_fields bits (Documentation/networking/ip-sysctl.rst, kernel 5.12+): source
 * IP 0x1, destination IP 0x2, IP protocol 0x4, source port 0x10, destination port 0x20.
 */
export const FIVE_TUPLE_FIELDS = 0x0037;

/** `multipath_hash` of the config: the addresses only, or addresses, protocol and ports. */
export type MultipathHash = 'l3' | 'l4';

/** The sysctl values for one `multipath_hash`: fib_multipath_hash_policy and, for policy 3, fib_multipath_hash_fields. */
export interface MultipathHashSysctls {
  policy: 0 | 1 | 3;
  fields?: number;
  /** Why the kernel's choice is weaker than asked (policy 1 on a kernel without hash fields). */
  note?: string;
}

/**
 * The sysctls for `mode` on a kernel that has fib_multipath_hash_fields (`customFields`) or not.
 * l3 is policy 0. l4 is policy 3 over the 5-tuple: policy 1 takes a forwarded packet's own flow
 * hash when it carries one (net/ipv4/route.c fib_multipath_hash, `skb->l4_hash`), and a sender
 * behind a veth or tap (a container, a VM) hands over its socket's hash, which Linux TCP changes at
 * each retransmission timeout (sk_rethink_txhash): the flow would move to another uplink mid-way.
 */
export function multipathHashSysctls(mode: MultipathHash, customFields: boolean): MultipathHashSysctls {
  if (mode === 'l3') return { policy: 0 };
  if (customFields) return { policy: 3, fields: FIVE_TUPLE_FIELDS };
  return {
    policy: 1,
    note: 'this kernel has no net.ipv4.fib_multipath_hash_fields (Linux 5.12+): with fib_multipath_hash_policy 1 a forwarded flow from a container or VM may change uplink when its TCP times out; keep flow pinning on',
  };
}

/**
 * Sets net.ipv4.fib_multipath_hash_policy (and fib_multipath_hash_fields first, so that policy 3
 * never runs with other fields) for `mode`; writes only what differs. Resolves with what is set
 * and the previous values. Throws UplinkdError('io') when a file cannot be read or written.
 */
export async function setMultipathHash(mode: MultipathHash, dir = IPV4_SYSCTL_DIR): Promise<MultipathHashSysctls & { previous: { policy: number; fields?: number } }> {
  const policyFile = path.join(dir, 'fib_multipath_hash_policy');
  const fieldsFile = path.join(dir, 'fib_multipath_hash_fields');
  const previousFields = await readNumber(fieldsFile).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw ioError(fieldsFile, err);
  });
  const want = multipathHashSysctls(mode, previousFields !== undefined);
  const previousPolicy = await readNumber(policyFile).catch((err: Error) => {
    throw ioError(policyFile, err);
  });
  try {
    if (want.fields !== undefined && previousFields !== want.fields) await fs.writeFile(fieldsFile, `${want.fields}\n`);
    if (previousPolicy !== want.policy) await fs.writeFile(policyFile, `${want.policy}\n`);
  } catch (err) {
    throw ioError(want.fields !== undefined && previousFields !== want.fields ? fieldsFile : policyFile, err as Error);
  }
  return { ...want, previous: { policy: previousPolicy, ...(previousFields !== undefined && { fields: previousFields }) } };
}

async function readNumber(file: string): Promise<number> {
  // Number() reads the decimal the kernel prints, and hex too.
  return Number((await fs.readFile(file, 'utf8')).trim());
}

function ioError(file: string, err: Error): UplinkdError {
  return new UplinkdError('io', `cannot set ${file}: ${err.message}`, { errno: (err as NodeJS.ErrnoException).code, cause: err });
}
