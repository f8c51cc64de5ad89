// What the kernel removes by itself. A device going administratively down or away, losing
// carrier or losing an address flushes the routes and nexthops through it (fib_sync_down_dev,
// nexthop_flush_dev, fib_sync_down_addr in net/ipv4/fib_semantics.c, net/ipv4/nexthop.c) and
// refuses new ones while it is down. Neither is another program's drift nor a failure to back off.
import type { Change, Nexthop } from '../model/types';
import type { UplinkdError } from '../errors';

/**
 * The devices an owned object goes out of: a route's dev and multipath hops, or the devices of its
 * nexthop object / group (`nhid`, looked up in `nexthops` by id, members recursively); a nexthop's dev
 * or its members' devices. Rules name no device the kernel flushes them with: none.
 */
export function devicesOf(change: Change, nexthops: ReadonlyMap<number, Nexthop>): Set<string> {
  const devs = new Set<string>();
  const ofNexthop = (id: number, seen: Set<number>): void => {
    const nh = nexthops.get(id);
    if (!nh || seen.has(id)) return;
    seen.add(id);
    if (nh.dev) devs.add(nh.dev);
    for (const m of nh.group ?? []) ofNexthop(m.id, seen);
  };
  if (change.kind === 'route') {
    const r = change.route;
    if (r.dev) devs.add(r.dev);
    for (const hop of r.multipath ?? []) devs.add(hop.dev);
    if (r.nhid !== undefined) ofNexthop(r.nhid, new Set());
  } else if (change.kind === 'nexthop') {
    const n = change.nexthop;
    if (n.dev) devs.add(n.dev);
    for (const m of n.group ?? []) ofNexthop(m.id, new Set());
  }
  return devs;
}

/** Whether `change` goes out of one of `devices` (link events or address removals seen, or links down). */
export function throughDevices(change: Change, devices: ReadonlySet<string>, nexthops: ReadonlyMap<number, Nexthop>): boolean {
  if (devices.size === 0) return false;
  for (const d of devicesOf(change, nexthops)) if (devices.has(d)) return true;
  return false;
}

/**
 * Whether the kernel refused `change` because its link is down right now: ENETDOWN (the device is
 * not up), or EINVAL (gateway not reachable, nexthop id just flushed) / ENETUNREACH while one of its
 * devices is in `linkEvents` (down in the snapshot, or a link event or address removal seen since).
 * Such a change waits for the link's next event; it is not a failure to retry with backoff.
 */
export function waitingForLink(change: Change, error: UplinkdError, linkEvents: ReadonlySet<string>, nexthops: ReadonlyMap<number, Nexthop>): boolean {
  const errno = error.detail.errno;
  if (errno === 'ENETDOWN') return true;
  if (errno !== 'EINVAL' && errno !== 'ENETUNREACH') return false;
  return throughDevices(change, linkEvents, nexthops);
}
