// The uplinks as the daemon's last cycle planned them. Built before the health monitor and the
// daemon (src/daemon/run.ts): the daemon writes it after each cycle, the monitor reads each uplink's
// probe endpoint from it, so neither needs the other to exist first.
import type { UplinkEndpoint } from '../health/monitor';
import type { UplinkStatus } from '../plan/planner';

/**
 * The last plan's uplinks by name (UplinkStatus: interface, address, gateway, state as planned); empty until the
 * first cycle. `endpoint(name)` is what the health monitor probes through; undefined for an unknown or unplanned uplink.
 */
export class PlannedUplinks {
  private uplinks: UplinkStatus[] = [];
  private byName = new Map<string, UplinkStatus>();

  /** Replaces the view with the last plan's uplinks (Plan.uplinks, in config order). */
  set(uplinks: UplinkStatus[]): void {
    this.uplinks = uplinks;
    this.byName = new Map(uplinks.map((u) => [u.name, u]));
  }

  /** The last plan's uplinks, in config order; empty before the first cycle. */
  all(): UplinkStatus[] {
    return this.uplinks;
  }

  /** One uplink by name, undefined when the last plan has none of that name. */
  get(name: string): UplinkStatus | undefined {
    return this.byName.get(name);
  }

  /** Where the health monitor probes `name` from (an EndpointLookup, src/health/monitor.ts): its interface, address, gateway and whether its link is down. */
  readonly endpoint = (name: string): UplinkEndpoint | undefined => {
    const u = this.byName.get(name);
    return u && { interface: u.interface, address: u.address, gateway: u.gateway, ...(u.state === 'link-down' && { linkDown: true }) };
  };
}
