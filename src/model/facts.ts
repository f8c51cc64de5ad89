import type { Ipv4, KernelState } from './types';

export type DhcpClient = 'dhclient' | 'dhcpcd' | 'networkd' | 'udhcpc';

/** What a DHCP client's lease file says about one interface. */
export interface Lease {
  interface: string;
  client: DhcpClient;
  file: string;
  address?: Ipv4;
  gateway?: Ipv4;
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
}
