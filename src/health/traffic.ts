// The uplink's own traffic as a health signal: per-interface packet counters of the daemon's
// network namespace, read from /proc/net/dev (a link to /proc/self/net/dev, so it shows the
// namespace of the reading process, unlike /sys/class/net which shows the one sysfs was
// mounted in). One read serves every uplink. Why counters and not conntrack or nft counters:
// one small read of a file the kernel keeps anyway, no ruleset of ours to keep in step, and it
// sees every packet of the interface (router's own, forwarded, NATed or not).
import { readFileSync } from 'node:fs';

export interface InterfaceCounters {
  rxPackets: number;
  txPackets: number;
}

/**
 * Parses /proc/net/dev (format of net/core/net-procfs.c dev_seq_printf_stats: two header lines,
 * then `name: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast
 * tx_bytes tx_packets ...`). Lines it cannot read are skipped.
 */
export function parseNetDev(text: string): Map<string, InterfaceCounters> {
  const out = new Map<string, InterfaceCounters>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (!name || fields.length < 10 || fields.some((n) => !Number.isFinite(n))) continue;
    out.set(name, { rxPackets: fields[1], txPackets: fields[9] });
  }
  return out;
}

/** Counters of every interface of this namespace; an empty map when /proc/net/dev cannot be read. */
export function readNetDev(path = '/proc/net/dev'): Map<string, InterfaceCounters> {
  try {
    return parseNetDev(readFileSync(path, 'utf8'));
  } catch {
    return new Map();
  }
}
