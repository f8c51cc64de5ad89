// Loads the raw-ICMP addon (src/health/native/icmp.c), built by node-gyp when the package is installed.
import fs from 'node:fs';
import path from 'node:path';
import { UplinkdError } from '../errors';

/** An open raw ICMP socket (opaque). */
export type IcmpHandle = { readonly __brand: 'IcmpHandle' };

export interface IcmpAddon {
  /** A raw ICMP socket bound to `source` (and to `device` with SO_BINDTODEVICE); onReadable runs when datagrams wait. */
  open(source: string, device: string | null, onReadable: () => void): IcmpHandle;
  /** Throws an Error whose `code` is the errno name (ENETUNREACH, EPERM...). */
  send(handle: IcmpHandle, destination: string, packet: Buffer): void;
  /** [bytes, source address] of the next waiting datagram, or null when none waits. */
  recv(handle: IcmpHandle, into: Buffer): [number, string] | null;
  close(handle: IcmpHandle): void;
}

const ADDON_FILE = 'uplinkd_icmp.node';

/** Where the addon may be: beside the sources (dist/src/health -> src/health/native/build). */
export function addonCandidates(dir = __dirname): string[] {
  return [
    process.env.UPLINKD_ICMP_ADDON,
    path.resolve(dir, '../../../src/health/native/build/Release', ADDON_FILE),
    path.resolve(dir, 'native/build/Release', ADDON_FILE),
  ].filter((p): p is string => typeof p === 'string' && p !== '');
}

let loaded: IcmpAddon | undefined;

/**
 * The native ICMP addon (src/health/native, built by node-gyp at install): from $UPLINKD_ICMP_ADDON, the checkout's
 * build or the package's; loaded once. Throws UplinkdError('io') naming the places looked in when it is not built.
 */
export function loadIcmpAddon(): IcmpAddon {
  if (loaded) return loaded;
  const candidates = addonCandidates();
  const file = candidates.find((p) => fs.existsSync(p));
  if (!file) {
    throw new UplinkdError(
      'io',
      `ICMP probes need the native addon ${ADDON_FILE}, built at install time by node-gyp ` +
        `(npm run build:native); looked in ${candidates.join(', ')}. Other probe methods (tcp, http, https, dns) work without it.`,
    );
  }
  try {
    loaded = require(file) as IcmpAddon;
  } catch (cause) {
    throw new UplinkdError('io', `cannot load the ICMP addon ${file}: ${(cause as Error).message}`, { cause });
  }
  return loaded;
}
