// Why a DHCP uplink has no gateway, in words that say what is missing: no lease at all,
// a lease for another address, or a lease that lacks a default route (RFC 3442 makes a
// client ignore option 3 whenever option 121 is present).
import type { Lease } from '../model/facts';
import type { Cidr, Ipv4 } from '../model/types';

/**
 * The reason for state `no-gateway` of a DHCP uplink on `dev` with address `address` when
 * neither a default route nor a lease gave a usable gateway. `usable(g)` says whether a
 * gateway can be used on `network` (the planner's rule). Leases are the facts' leases, any interface.
 */
export function missingGatewayReason(
  leases: readonly Lease[],
  dev: string,
  address: Ipv4,
  network: Cidr,
  usable: (g: Ipv4) => boolean,
): string {
  const prefix = `no default route on ${dev}`;
  const onDev = leases.filter((l) => l.interface === dev);
  if (onDev.length === 0) return `${prefix} and no lease for ${dev}`;
  const mine = onDev.filter((l) => l.address === address);
  if (mine.length === 0) {
    const others = [...new Set(onDev.map((l) => l.address ?? 'no address'))].join(', ');
    return `${prefix}; the lease for ${dev} is for ${others}, not ${address}`;
  }
  const lease = mine[0];
  const what = `the ${lease.client} lease for ${address} on ${dev}`;
  if (lease.gateway !== undefined && !usable(lease.gateway)) return `${prefix}; ${what} names gateway ${lease.gateway}, which is not usable on ${network}`;
  if (lease.classlessRoutes !== undefined) {
    const ignored = lease.router !== undefined ? `, and its router ${lease.router} (option 3) is ignored as RFC 3442 requires` : '';
    return `${prefix}; ${what} has classless routes (option ${lease.classlessOption}) without a default (0.0.0.0/0) route${ignored}`;
  }
  return `${prefix}; ${what} has neither a router (option 3) nor a default classless route (option 121)`;
}
