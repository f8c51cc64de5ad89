// The routes of uplinkd's tables (docs/design.md, "What uplinkd owns"): per uplink its connected network and default,
// the LAN networks, the other uplinks' networks and 127.0.0.0/8 (LARTC HOWTO 4.2.1 split access); and the balanced
// default in the balance table. At 64 uplinks that is over 4,000 routes built, deduplicated and sorted, from inputs of
// about 64 short lines that a cycle with nothing changed finds as they were: the result is remembered for them.
import type { Cidr, Ipv4, Route } from '../model/types';
import { RouteMap, sortRoutes } from '../model/identity';
import { LastResult } from '../model/memo';
import { DEFAULT_DST } from '../model/text';
import type { LocalNetwork } from './connected';

/** Loopback network (RFC 1122 3.2.1.3), routed to `lo` in every uplink table as in LARTC 4.2.1. */
export const LOOPBACK_NET = '127.0.0.0/8';

/** One uplink as its table's routes see it (planner.ts resolves it from the config and the facts). */
export interface TableUplink {
  table: number;
  /** Its interface. */
  dev: string;
  /** The interface exists and is up: the kernel refuses routes through it otherwise. */
  routable: boolean;
  /** Its address (the link route's `src`) and connected network (absent for a /32 without peer). */
  address?: Ipv4;
  network?: Cidr;
  gateway?: Ipv4;
  /** The gateway is outside the connected network. */
  onlink?: boolean;
  /** `default dev IF` (point-to-point links). */
  deviceDefault?: boolean;
  /** Routes its provider's link brought into main (connected.ts providerNetworks): in this table only. */
  provider?: LocalNetwork[];
}

/** Everything tableRoutes() reads. */
export interface TableInputs {
  /** rtm_protocol of every route (config.protocol). */
  protocol: number;
  uplinks: TableUplink[];
  /** Networks behind non-uplink interfaces (connected.ts), copied into every uplink table. */
  lan: LocalNetwork[];
  /** The balance table (config.tableBase) when the resilient group has members: `default nhid <it>` goes there. */
  balanceTable?: number;
}

function buildRoutes(inputs: TableInputs): Route[] {
  const { protocol, uplinks, lan } = inputs;
  const routes = new RouteMap<Route>();
  // First route for a key wins (the kernel holds one route per table+dst+metric).
  const add = (r: Route): void => {
    if (!routes.has(r)) routes.set(r, r);
  };
  for (const u of uplinks) {
    const { table } = u;
    if (u.address !== undefined && u.routable) {
      if (u.network !== undefined) add({ table, dst: u.network, type: 'unicast', protocol, scope: 'link', dev: u.dev, src: u.address });
      if (u.gateway !== undefined) {
        add({ table, dst: DEFAULT_DST, type: 'unicast', protocol, scope: 'universe', gateway: u.gateway, dev: u.dev, ...(u.onlink && { onlink: true }) });
      } else if (u.deviceDefault) {
        add({ table, dst: DEFAULT_DST, type: 'unicast', protocol, scope: 'link', dev: u.dev });
      }
    }
    for (const l of [...lan, ...u.routable ? u.provider ?? [] : []]) {
      if (l.hops) {
        const multipath = l.hops.map((h) => (h.gateway !== undefined ? { gateway: h.gateway, dev: h.dev, weight: h.weight } : { dev: h.dev, weight: h.weight }));
        add({ table, dst: l.dst, type: 'unicast', protocol, scope: 'universe', multipath });
        continue;
      }
      add(l.gateway !== undefined
        ? { table, dst: l.dst, type: 'unicast', protocol, scope: 'universe', gateway: l.gateway, dev: l.dev }
        : { table, dst: l.dst, type: 'unicast', protocol, scope: 'link', dev: l.dev });
    }
    for (const other of uplinks) {
      if (other === u || other.network === undefined || !other.routable) continue;
      add({ table, dst: other.network, type: 'unicast', protocol, scope: 'link', dev: other.dev });
    }
    add({ table, dst: LOOPBACK_NET, type: 'unicast', protocol, scope: 'link', dev: 'lo' });
  }
  if (inputs.balanceTable !== undefined) {
    const table = inputs.balanceTable;
    add({ table, dst: DEFAULT_DST, type: 'unicast', protocol, scope: 'universe', nhid: table });
  }
  return sortRoutes([...routes.values()]);
}

const last = new LastResult<string, readonly Route[]>();

/**
 * The routes of uplinkd's tables for `inputs`, sorted by compareRoutes (src/model/identity.ts), all with
 * `inputs.protocol`. Per uplink `u`, in `u.table`: while its interface is routable and it has an address, the link
 * route `u.network dev u.dev scope link src u.address` and its default (`via u.gateway [onlink]`, or `dev u.dev` when
 * `deviceDefault`); every LAN network (`[via gateway] dev`, or multipath over its hops); then, while its interface is
 * routable, the routes its provider's link brought into main (`u.provider`, the same way); the networks of the other routable uplinks
 * (`dev`, scope link); `127.0.0.0/8 dev lo`. Where two routes share table, prefix and metric the first in that order
 * is kept. With `balanceTable`: `default nhid <balanceTable>` in that table.
 *
 * Pure. The result is frozen (the array and each route) and shared: a call whose inputs have the same JSON as the
 * previous call's returns the previous array; any other input builds a new one. Throws nothing.
 */
export function tableRoutes(inputs: TableInputs): readonly Route[] {
  return last.get(JSON.stringify(inputs), () => Object.freeze(buildRoutes(inputs).map((r) => Object.freeze(r))));
}
