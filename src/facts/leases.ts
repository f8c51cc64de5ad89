// Reads DHCP clients' lease files into Lease facts. Each format has a pure parser
// beside this file; this module finds the files, tells the formats apart and never
// lets one bad file spoil the rest.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { DhcpClient, Lease } from '../model/facts';
import { UplinkdError } from '../errors';
import { expandGlob } from './glob';
import { MAX_STATE_BYTES, readRegularFile, readRegularFileStat } from '../system/regular-file';
import { parseDhclientLeases } from './dhclient';
import { isDhcpMessage, parseDhcpcdLease } from './dhcpcd';
import { parseNetworkdLease } from './networkd';
import { parseUdhcpcLease } from './udhcpc';

/** Called once per file that was skipped, with the reason. */
export type LeaseWarning = (file: string, message: string) => void;

export interface ReadLeasesOptions {
  warn?: LeaseWarning;
  /** Interface index -> name; default: read from /sys/class/net (the caller's network namespace). */
  interfaceNames?: ReadonlyMap<number, string>;
}

/**
 * Which client wrote a file, from its content first and its path second; undefined
 * for files that hold no IPv4 lease (dhcpcd's .lease6, dhclient's DUID-only files, ...).
 */
export function detectLeaseFormat(file: string, content: Uint8Array): DhcpClient | undefined {
  if (file.endsWith('.lease6')) return undefined;
  if (isDhcpMessage(content)) return 'dhcpcd';
  const text = Buffer.from(content.subarray(0, 4096)).toString('utf8');
  if (/(^|[\s;}])lease\s*\{/.test(text)) return 'dhclient';
  if (/^\s*(ADDRESS|ROUTER|LIFETIME)=/m.test(text) || (text.trimStart().startsWith('{') && file.includes('/netif/leases/'))) {
    return 'networkd';
  }
  if (/^\s*ip=/m.test(text)) return 'udhcpc';
  return undefined;
}

/** Interface index -> name for the current network namespace (sysfs is per namespace under `ip netns exec`). */
export async function readInterfaceNames(sysClassNet = '/sys/class/net'): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  let entries: string[];
  try {
    entries = await fs.readdir(sysClassNet);
  } catch {
    return names;
  }
  await Promise.all(
    entries.map(async (name) => {
      try {
        const index = Number((await readRegularFile(path.join(sysClassNet, name, 'ifindex'), MAX_STATE_BYTES)).toString('utf8').trim());
        if (Number.isInteger(index)) names.set(index, name);
      } catch {
        // interface vanished between readdir and read: not ours to report
      }
    }),
  );
  return names;
}

/** The leases in one file (a dhclient database may hold several interfaces). Throws UplinkdError. */
export function parseLeaseFile(
  file: string,
  content: Uint8Array,
  mtimeMs: number,
  interfaceNames: ReadonlyMap<number, string>,
): Lease[] {
  const format = detectLeaseFormat(file, content);
  const text = (): string => Buffer.from(content).toString('utf8');
  switch (format) {
    case 'dhcpcd':
      return [parseDhcpcdLease(content, file, mtimeMs, interfaceNames.values())];
    case 'dhclient':
      return parseDhclientLeases(text(), file);
    case 'networkd':
      return [parseNetworkdLease(text(), file, interfaceNames, mtimeMs)];
    case 'udhcpc':
      return [parseUdhcpcLease(text(), file, mtimeMs)];
    case undefined:
      return [];
  }
}

/**
 * Leases from every file matching the globs (each file read once, in path order).
 * A file that cannot be read or parsed is reported through `warn` and skipped.
 */
export async function readLeases(globs: string[], options: ReadLeasesOptions = {}): Promise<Lease[]> {
  const warn = options.warn ?? (() => undefined);
  const files = [...new Set((await Promise.all(globs.map(expandGlob))).flat())].sort();
  if (files.length === 0) return [];
  const interfaceNames = options.interfaceNames ?? (await readInterfaceNames());
  const perFile = await Promise.all(
    files.map(async (file) => {
      try {
        const { bytes, stat } = await readRegularFileStat(file, MAX_STATE_BYTES);
        return parseLeaseFile(file, bytes, Math.floor(stat.mtimeMs), interfaceNames);
      } catch (err) {
        // A directory matching a glob (`/var/lib/dhcp/*`) is not a lease file; a FIFO or device is worth a warning.
        if (err instanceof UplinkdError && err.detail.errno === 'EISDIR') return [];
        warn(file, err instanceof UplinkdError ? err.message : `cannot read: ${(err as Error).message}`);
        return [];
      }
    }),
  );
  return perFile.flat();
}
