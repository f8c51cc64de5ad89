// IPv4 helpers shared by the lease parsers.
import type { Ipv4 } from '../model/types';

/** True for a dotted quad with each part 0..255 and no leading zeros. */
export function isIpv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

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
