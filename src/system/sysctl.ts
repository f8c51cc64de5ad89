// The multipath hash sysctls, the only ones uplinkd sets. /proc/sys/net is per network namespace:
// the values read and written are those of the namespace the process runs in.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../errors';
import { runtimeDir } from './runtime-dir';

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

/** The values found before uplinkd first changed them, and what it set last (the record restoreMultipathHash reads). */
interface HashRecord {
  previous: { policy: number; fields?: number };
  set: { policy: number; fields?: number };
}

/**
 * Where the multipath hash values found before uplinkd's first change are kept for this network namespace (the
 * sysctls are per namespace): `<runtime dir>/sysctl/net-<inode of /proc/self/ns/net>.json`.
 */
export async function hashRecordPath(dir = runtimeDir()): Promise<string> {
  return path.join(dir, 'sysctl', `net-${(await fs.stat('/proc/self/ns/net')).ino}.json`);
}

async function readRecord(record: string): Promise<HashRecord | undefined> {
  try {
    const r = JSON.parse(await fs.readFile(record, 'utf8')) as HashRecord;
    return typeof r?.previous?.policy === 'number' && typeof r?.set?.policy === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets net.ipv4.fib_multipath_hash_policy (and fib_multipath_hash_fields first, so that policy 3
 * never runs with other fields) for `mode`; writes only what differs. With `record` (hashRecordPath), the values
 * found before the first change are kept there for restoreMultipathHash. Resolves with what is set and the previous
 * values. Throws UplinkdError('io') when a file cannot be read or written.
 */
export async function setMultipathHash(mode: MultipathHash, dir = IPV4_SYSCTL_DIR, record?: string): Promise<MultipathHashSysctls & { previous: { policy: number; fields?: number } }> {
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
  const previous = { policy: previousPolicy, ...(previousFields !== undefined && { fields: previousFields }) };
  const changes = previousPolicy !== want.policy || (want.fields !== undefined && previousFields !== want.fields);
  if (record && changes) {
    const kept = await readRecord(record);
    const set = { policy: want.policy, ...(want.fields !== undefined ? { fields: want.fields } : previousFields !== undefined && { fields: previousFields }) };
    try {
      await fs.mkdir(path.dirname(record), { recursive: true });
      await fs.writeFile(record, `${JSON.stringify({ previous: kept?.previous ?? previous, set } satisfies HashRecord)}\n`);
    } catch (err) {
      throw ioError(record, err as Error);
    }
  }
  try {
    if (want.fields !== undefined && previousFields !== want.fields) await fs.writeFile(fieldsFile, `${want.fields}\n`);
    if (previousPolicy !== want.policy) await fs.writeFile(policyFile, `${want.policy}\n`);
  } catch (err) {
    throw ioError(want.fields !== undefined && previousFields !== want.fields ? fieldsFile : policyFile, err as Error);
  }
  return { ...want, previous };
}

/**
 * Puts back the multipath hash values `record` kept (setMultipathHash) and removes the record: at `uplinkd down`,
 * `run --cleanup`, and when the configuration no longer sets `multipath_hash`. Values changed by someone else since
 * uplinkd set them are left as they are, with a note saying so. Resolves with what was written back, as
 * `sysctl NAME=VALUE` lines (none when nothing was recorded), and the note. Throws UplinkdError('io') when a file
 * cannot be read or written.
 */
export async function restoreMultipathHash(dir = IPV4_SYSCTL_DIR, record?: string): Promise<{ restored: string[]; note?: string }> {
  const kept = record ? await readRecord(record) : undefined;
  if (!record || !kept) return { restored: [] };
  const policyFile = path.join(dir, 'fib_multipath_hash_policy');
  const fieldsFile = path.join(dir, 'fib_multipath_hash_fields');
  const policy = await readNumber(policyFile).catch((err: Error) => { throw ioError(policyFile, err); });
  const fields = await readNumber(fieldsFile).catch(() => undefined);
  const restored: string[] = [];
  let note: string | undefined;
  if (policy !== kept.set.policy || (kept.set.fields !== undefined && fields !== kept.set.fields)) {
    note = `net.ipv4.fib_multipath_hash_policy ${policy}${fields !== undefined ? ` and fields ${fields}` : ''} left as they are: changed since uplinkd set them`;
  } else {
    let file = fieldsFile;
    try {
      if (kept.previous.fields !== undefined && fields !== kept.previous.fields) {
        await fs.writeFile(fieldsFile, `${kept.previous.fields}\n`);
        restored.push(`sysctl net.ipv4.fib_multipath_hash_fields=${kept.previous.fields}`);
      }
      file = policyFile;
      if (policy !== kept.previous.policy) {
        await fs.writeFile(policyFile, `${kept.previous.policy}\n`);
        restored.push(`sysctl net.ipv4.fib_multipath_hash_policy=${kept.previous.policy}`);
      }
    } catch (err) {
      throw ioError(file, err as Error);
    }
  }
  await fs.rm(record, { force: true });
  return { restored, ...(note !== undefined && { note }) };
}

/**
 * What a configuration asks of the multipath hash (`multipath_hash`, `mode`): set it, keeping the values found in
 * `record` (hashRecordPath), or, when it is unset, put back the values uplinkd changed earlier (restoreMultipathHash).
 * Resolves with a note for people, if any. Throws UplinkdError('io') as those do.
 */
export async function syncMultipathHash(mode: MultipathHash | undefined, record: string, dir = IPV4_SYSCTL_DIR): Promise<string | undefined> {
  return mode === undefined ? (await restoreMultipathHash(dir, record)).note : (await setMultipathHash(mode, dir, record)).note;
}

async function readNumber(file: string): Promise<number> {
  // Number() reads the decimal the kernel prints, and hex too.
  return Number((await fs.readFile(file, 'utf8')).trim());
}

function ioError(file: string, err: Error): UplinkdError {
  return new UplinkdError('io', `cannot set ${file}: ${err.message}`, { errno: (err as NodeJS.ErrnoException).code, cause: err });
}
