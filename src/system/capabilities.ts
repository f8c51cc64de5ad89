import { readFileSync } from 'node:fs';

const CAP_NET_ADMIN = 12;

/** Whether this process may change routing: CAP_NET_ADMIN in its effective set (/proc/self/status CapEff). */
export function hasNetAdmin(status: string = readFileSync('/proc/self/status', 'utf8')): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
}
