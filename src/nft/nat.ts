// Source NAT per uplink (docs/policies.md), a chain in uplinkd's own table `ip uplinkd`:
//   oifname "<uplink interface>" masquerade         (`nat: masquerade`: the address the uplink has now)
//   oifname "<uplink interface>" snat to <address>  (`nat: {snat: ADDRESS}`)
// Masquerade takes the interface's address at the time of each new connection, so a DHCP renumbering
// needs no change here; the chain depends on the configuration alone, like the pinning chains.
import type { Config } from '../config/types';

export interface NatRule {
  uplink: string;
  /** The nft statement, e.g. `oifname "if1" masquerade`. */
  text: string;
}

/** The NAT rules of `config`, in uplink order; empty when no uplink has `nat:`. */
export function natRules(config: Config): NatRule[] {
  return config.uplinks.flatMap((u): NatRule[] => {
    if (!u.nat) return [];
    const action = u.nat.kind === 'masquerade' ? 'masquerade' : `snat to ${u.nat.address}`;
    return [{ uplink: u.name, text: `oifname "${u.interface}" ${action}` }];
  });
}
