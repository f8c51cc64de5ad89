// Warnings about weak health monitoring (issue 10), for `check`, `plan` and the daemon log.
// Pure: the config plus, where known, each uplink's network and gateway (the planner knows
// them for DHCP uplinks too; `check` only has the static ones).
import { contains, isIpv4 } from '../model/ipv4';
import type { Cidr, Ipv4 } from '../model/types';
import type { Config } from './types';

/** Where an uplink is, as far as known. */
export interface UplinkPlace {
  network?: Cidr;
  gateway?: Ipv4;
}

/**
 * Warnings, one line each, in config order:
 *  - a target that is the uplink's gateway or on its own network: it answers while the provider's
 *    upstream is dead ("cannot see past the first hop");
 *  - one target shared by every monitored uplink and no other target: when it stops answering,
 *    every uplink is judged down at once (a single point of failure for all);
 *  - fewer than two targets: one target's own outage or rate limit is taken for the uplink's.
 */
export function monitorWarnings(config: Config, place: (uplink: string) => UplinkPlace | undefined): string[] {
  const out: string[] = [];
  const monitored = config.uplinks.filter((u) => u.monitor && u.monitor.targets.length > 0);
  for (const u of monitored) {
    const targets = u.monitor!.targets;
    const where = place(u.name);
    for (const t of targets) {
      if (where?.gateway !== undefined && t === where.gateway) {
        out.push(`uplink ${u.name}: monitor target ${t} is the uplink's own gateway: it cannot see past the first hop (it answers while the provider's upstream is dead)`);
      } else if (where?.network !== undefined && isIpv4(t) && contains(where.network, t)) {
        out.push(`uplink ${u.name}: monitor target ${t} is on the uplink's own network ${where.network}: it cannot see past the first hop (it answers while the provider's upstream is dead)`);
      }
    }
    if (targets.length < 2) {
      out.push(`uplink ${u.name}: monitor has only one target (${targets[0]}): its own outage or rate limit is taken for the uplink's; use two or more targets on different networks`);
    }
  }
  const first = monitored[0]?.monitor!.targets;
  if (monitored.length >= 2 && first.length === 1 && monitored.every((u) => u.monitor!.targets.length === 1 && u.monitor!.targets[0] === first[0])) {
    out.push(`every uplink (${monitored.map((u) => u.name).join(', ')}) monitors only ${first[0]}: a single point of failure for all uplinks; when it stops answering all are judged down (uplinkd then keeps them as a last resort)`);
  }
  return out;
}

/** The places `check` knows without the kernel: static uplinks' address networks and gateways. */
export function configuredPlace(config: Config): (uplink: string) => UplinkPlace | undefined {
  return (name) => {
    const u = config.uplinks.find((x) => x.name === name);
    return u && { ...(u.address && { network: u.address.network }), ...(u.gateway && { gateway: u.gateway }) };
  };
}
