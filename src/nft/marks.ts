// Which mark pins a connection to which uplink. An uplink gets its markIndex (derived from its
// name, src/config/identity.ts) << (the mask's lowest set bit); 0 inside the mask means "not pinned yet".
// Only the bits inside the mask are ever read or written, so other users of the packet and
// conntrack marks (firewalls, VPNs, tc) keep theirs.
import type { Config } from '../config/types';
import { markShift } from '../config/values';

export interface PinMark {
  uplink: string;
  interface: string;
  table: number;
  mark: number;
}

/** The pinning marks, in config order; empty when pinning is off. */
export function pinMarks(config: Config): PinMark[] {
  const pinning = config.pinning;
  if (!pinning?.enabled) return [];
  const shift = markShift(pinning.markMask);
  return config.uplinks.map((u) => ({ uplink: u.name, interface: u.interface, table: u.table, mark: (u.markIndex << shift) >>> 0 }));
}
