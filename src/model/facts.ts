import type { Cidr, Ipv4, KernelState } from './types';

export type DhcpClient = 'dhclient' | 'dhcpcd' | 'networkd' | 'udhcpc';

/** One classless static route from a lease (RFC 3442); `gateway` 0.0.0.0 means on the link. */
export interface ClasslessRoute {
  dst: Cidr;
  gateway: Ipv4;
}

/** What a DHCP client's lease file says about one interface. */
export interface Lease {
  interface: string;
  client: DhcpClient;
  file: string;
  address?: Ipv4;
  /**
   * The gateway a client should use: the 0.0.0.0/0 classless route when the lease has classless
   * routes (option 3 is then ignored, RFC 3442), otherwise the first router of option 3.
   */
  gateway?: Ipv4;
  /** First router of option 3, as sent (also when classless routes override it). */
  router?: Ipv4;
  /** Classless static routes in the server's order: option 121, or Microsoft's 249 without 121. */
  classlessRoutes?: ClasslessRoute[];
  /** The option `classlessRoutes` came from. */
  classlessOption?: 121 | 249;
  /** Unix ms when the lease expires, if the file says. */
  expiresAt?: number;
}

/** Health monitor verdict for one uplink (issue 4); absent means not monitored. */
export type HealthVerdict = 'up' | 'degraded' | 'down' | 'unknown';

/** Everything the planner looks at besides the config. */
export interface Facts {
  kernel: KernelState;
  leases: Lease[];
  /** Uplink name -> verdict. */
  health: Record<string, HealthVerdict>;
  /**
   * Identities (objectIdentity, src/model/identity.ts) of the objects whose changes the kernel refused in the last
   * cycle (the daemon's); absent outside the daemon. The planner leaves out what depends on one still planned as refused.
   */
  refused?: ReadonlySet<string>;
}
