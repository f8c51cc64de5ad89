// IPv4 helpers the lease parsers need beyond src/model/ipv4.
import { isIpv4 } from '../model/ipv4';
import type { Ipv4 } from '../model/types';

export { isIpv4 };

/** Dotted quad from 4 bytes at `offset`. */
export function ipv4FromBytes(bytes: Uint8Array, offset: number): Ipv4 {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** First valid address of a comma- or space-separated list, if any. */
export function firstIpv4(list: string): Ipv4 | undefined {
  return list
    .split(/[\s,]+/)
    .filter((s) => s !== '')
    .find(isIpv4);
}
