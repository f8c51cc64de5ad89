// Config objects for unit tests, built directly (the YAML loader is tested on its own).
import type { Config, MonitorConfig, UplinkConfig } from '../../src/config/types';
import { DEFAULTS, MONITOR_DEFAULTS } from '../../src/config/defaults';
import { networkOf, parseCidr } from '../../src/model/ipv4';

export interface TestUplink {
  name: string;
  interface: string;
  /** Static address "a.b.c.d/len"; absent means DHCP. */
  address?: string;
  /** Peer of a static point-to-point address. */
  peer?: string;
  gateway?: string;
  weight?: number;
  tier?: number;
  table?: number;
  /** Pinning mark index; default position + 1. */
  markIndex?: number;
  onDegraded?: MonitorConfig['onDegraded'];
}

/** A complete Config for unit tests: the given uplinks (DHCP when they have no `address`) over DEFAULTS, with `more` overriding any top-level field. */
export function testConfig(uplinks: TestUplink[], more: Partial<Omit<Config, 'uplinks'>> = {}): Config {
  const tableBase = more.tableBase ?? DEFAULTS.tableBase;
  return {
    file: 'test.yaml',
    lan: [],
    default: DEFAULTS.default,
    tableBase,
    rulePriority: DEFAULTS.rulePriority,
    protocol: DEFAULTS.protocol,
    // As the loader does: without pinning, the unpinned resilient timers.
    resilient: { ...DEFAULTS.resilient, ...(more.pinning?.enabled ? {} : DEFAULTS.resilientUnpinned) },
    paths: { ...DEFAULTS.paths, leases: [] },
    daemon: { ...DEFAULTS.daemon },
    ...more,
    uplinks: uplinks.map((u, i): UplinkConfig => {
      const cfg: UplinkConfig = {
        name: u.name,
        interface: u.interface,
        dhcp: u.address === undefined,
        weight: u.weight ?? DEFAULTS.weight,
        tier: u.tier ?? DEFAULTS.tier,
        // Positional numbers, as if the file set them: the planner takes whatever the config says
        // (the loader derives them from the names, src/config/identity.ts).
        table: u.table ?? tableBase + 1 + i,
        markIndex: u.markIndex ?? i + 1,
      };
      if (u.address !== undefined) {
        const { ip, prefixlen } = parseCidr(u.address);
        cfg.address = { ip, prefixlen, network: networkOf(ip, prefixlen) };
      }
      if (u.peer !== undefined) cfg.peer = u.peer;
      if (u.gateway !== undefined) cfg.gateway = u.gateway;
      if (u.onDegraded !== undefined) cfg.monitor = { ...MONITOR_DEFAULTS, targets: ['203.0.113.254', '198.18.0.1'], onDegraded: u.onDegraded };
      return cfg;
    }),
  };
}
