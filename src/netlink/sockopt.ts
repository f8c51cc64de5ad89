// SOL_NETLINK options and SO_RCVBUFFORCE for the request and notification sockets, through the
// small addon in src/netlink/native (the `netlink` package has no such setsockopt). Without the addon
// the sockets work as before: refusals without the kernel's text, dumps unfiltered (filtered here
// instead), the request socket's receive buffer capped at net.core.rmem_max (fewer requests in flight).
import fs from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import type { SockFilterInsn } from './filter';
import { NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK, NETLINK_NO_ENOBUFS, NETLINK_ROUTE } from './constants';

interface NetlinkAddon {
  /** 0 when every option was set, an errno when one failed, -1 when no socket of this process and `protocol` (default NETLINK_ROUTE) has the port id. */
  setNetlinkOptions(port: number, options: [number, number][], protocol?: number): number;
  /** SO_RCVBUFFORCE of `bytes`: 0 when set, an errno (EPERM without CAP_NET_ADMIN), -1 when no socket has the port id. */
  forceRecvBuffer(port: number, bytes: number, protocol?: number): number;
  /** The descriptor of this process's netlink socket of `protocol` (default NETLINK_ROUTE) bound to the port id, or -1. */
  socketFd(port: number, protocol?: number): number;
  /** SO_MEMINFO's SK_MEMINFO_DROPS of the descriptor: packets dropped for a full receive buffer; -errno on failure. */
  socketDrops(fd: number): number;
  /** SO_ATTACH_FILTER of a classic BPF program given as [code, jt, jf, k, ...] (SO_DETACH_FILTER when empty): 0 or an errno. */
  attachFilter(fd: number, program: number[]): number;
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
/** Why the addon is not loaded, for the fallback's log line. */
let loadFailure = '';

function load(): NetlinkAddon | null {
  if (addon !== undefined) return addon;
  const file = candidates().find((p) => fs.existsSync(p));
  try {
    addon = file ? (require(file) as NetlinkAddon) : null;
    if (!file) loadFailure = `${ADDON_FILE} not built (npm run build:native)`;
  } catch (e) {
    addon = null;
    loadFailure = `${ADDON_FILE}: ${(e as Error).message}`;
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
 * this process's netlink socket of `protocol` (NETLINK_ROUTE 0 by default) bound to `port` (its nl_pid).
 * Never throws: without the addon, or on an older kernel, the features are reported off.
 */
export function enableNetlinkFeatures(port: number, protocol = NETLINK_ROUTE): NetlinkFeatures {
  const a = load();
  if (!a) return { extAck: false, strictCheck: false };
  try {
    const extAck = a.setNetlinkOptions(port, [[NETLINK_EXT_ACK, 1]], protocol) === 0;
    const strictCheck = a.setNetlinkOptions(port, [[NETLINK_GET_STRICT_CHK, 1]], protocol) === 0;
    return { extAck, strictCheck };
  } catch {
    return { extAck: false, strictCheck: false };
  }
}

/**
 * Sets SO_RCVBUFFORCE (socket(7); the kernel doubles `bytes` and ignores net.core.rmem_max; needs
 * CAP_NET_ADMIN) on this process's netlink socket of `protocol` (NETLINK_ROUTE 0 by default) bound to `port`. Never throws: returns
 * undefined when set, else why not (the addon is not loaded, or the errno), for the caller's log line.
 */
export function forceRecvBuffer(port: number, bytes: number, protocol = NETLINK_ROUTE): string | undefined {
  const a = load();
  if (!a) return `the netlink addon is not loaded (${loadFailure})`;
  try {
    const r = a.forceRecvBuffer(port, bytes, protocol);
    if (r === 0) return undefined;
    const name = Object.entries(constants.errno).find(([, v]) => v === r)?.[0] ?? `errno ${r}`;
    return r === -1 ? `no netlink socket of this process has port ${port}` : `SO_RCVBUFFORCE failed: ${name}`;
  } catch (e) {
    return `SO_RCVBUFFORCE failed: ${(e as Error).message}`;
  }
}

/**
 * Turns the socket's receive-buffer overflow from a socket error into a count: sets NETLINK_NO_ENOBUFS
 * (include/uapi/linux/netlink.h) on this process's netlink socket of `protocol` (NETLINK_ROUTE 0 by
 * default) bound to `port` and returns a
 * reader of its drop count (SO_MEMINFO SK_MEMINFO_DROPS, Linux >= 4.6: answers or notifications lost).
 * Why: the `netlink` package's poll handler aborts the process (an uncaught C++ exception) when epoll
 * reports the EPOLLERR that ENOBUFS raises, so the error must never be raised. Undefined (nothing set)
 * without the addon or on an older kernel. Never throws; the reader returns undefined once it fails.
 */
export function countOverruns(port: number, protocol = NETLINK_ROUTE): (() => number | undefined) | undefined {
  const a = load();
  if (!a) return undefined;
  try {
    const fd = a.socketFd(port, protocol);
    if (fd < 0 || a.socketDrops(fd) < 0) return undefined;
    if (a.setNetlinkOptions(port, [[NETLINK_NO_ENOBUFS, 1]], protocol) !== 0) return undefined;
    return () => {
      const n = a.socketDrops(fd);
      return n < 0 ? undefined : n;
    };
  } catch {
    return undefined;
  }
}

/**
 * Attaches the classic BPF `program` (src/netlink/filter.ts) to this process's netlink socket of `protocol`
 * (NETLINK_ROUTE 0 by default) bound to `port` with SO_ATTACH_FILTER (socket(7); it replaces an earlier program),
 * or detaches the socket's program when `program` is undefined. Never throws: returns undefined when done, else why
 * not (the addon is not loaded, no such socket, or the errno: EINVAL when the kernel's checker refuses the program).
 */
export function attachSocketFilter(port: number, program: readonly SockFilterInsn[] | undefined, protocol = NETLINK_ROUTE): string | undefined {
  const a = load();
  if (!a) return `the netlink addon is not loaded (${loadFailure})`;
  try {
    const fd = a.socketFd(port, protocol);
    if (fd < 0) return `no netlink socket of this process has port ${port}`;
    const r = a.attachFilter(fd, (program ?? []).flatMap((i) => [i.code, i.jt, i.jf, i.k]));
    if (r === 0) return undefined;
    return `SO_ATTACH_FILTER failed: ${Object.entries(constants.errno).find(([, v]) => v === r)?.[0] ?? `errno ${r}`}`;
  } catch (e) {
    return `SO_ATTACH_FILTER failed: ${(e as Error).message}`;
  }
}

/** Why the addon is not loaded ('' when it is). */
export function addonFailure(): string {
  return load() ? '' : loadFailure;
}
