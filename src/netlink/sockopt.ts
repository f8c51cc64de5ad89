// SOL_NETLINK options for the request and notification sockets, through the small addon in
// src/netlink/native (the `netlink` package has no setsockopt). Without the addon the sockets
// work as before: refusals without the kernel's text, dumps unfiltered (filtered here instead).
import fs from 'node:fs';
import path from 'node:path';
import { NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK } from './constants';

interface NetlinkAddon {
  /** 0 when every option was set, an errno when one failed, -1 when no NETLINK_ROUTE socket of this process has the port id. */
  setNetlinkOptions(port: number, options: [number, number][]): number;
}

const ADDON_FILE = 'uplinkd_netlink.node';

/** Where the addon may be: beside the sources (dist/src/netlink -> src/netlink/native/build). */
function candidates(dir = __dirname): string[] {
  return [
    path.resolve(dir, '../../../src/netlink/native/build/Release', ADDON_FILE),
    path.resolve(dir, 'native/build/Release', ADDON_FILE),
  ];
}

let addon: NetlinkAddon | null | undefined;

function load(): NetlinkAddon | null {
  if (addon !== undefined) return addon;
  const file = candidates().find((p) => fs.existsSync(p));
  try {
    addon = file ? (require(file) as NetlinkAddon) : null;
  } catch {
    addon = null;
  }
  return addon;
}

/** What a socket got: the kernel's text in error acks, and dump filters honoured. */
export interface NetlinkFeatures {
  extAck: boolean;
  strictCheck: boolean;
}

/**
 * Sets NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK (include/uapi/linux/netlink.h, Linux >= 4.20) on
 * this process's NETLINK_ROUTE socket bound to `port` (its nl_pid). Never throws: without the addon,
 * or on an older kernel, the features are reported off.
 */
export function enableNetlinkFeatures(port: number): NetlinkFeatures {
  const a = load();
  if (!a) return { extAck: false, strictCheck: false };
  try {
    const extAck = a.setNetlinkOptions(port, [[NETLINK_EXT_ACK, 1]]) === 0;
    const strictCheck = a.setNetlinkOptions(port, [[NETLINK_GET_STRICT_CHK, 1]]) === 0;
    return { extAck, strictCheck };
  } catch {
    return { extAck: false, strictCheck: false };
  }
}
