import type { Cidr, Ipv4, PortRange } from '../model/types';

export type DefaultMode = 'balance' | 'failover';
export type ProbeMethod = 'icmp' | 'tcp' | 'http' | 'https' | 'dns';

export interface MonitorConfig {
  targets: string[];
  method: ProbeMethod;
  /** TCP/HTTP(S)/DNS port; default per method. */
  port?: number;
  /** Milliseconds between steady-state probe rounds (one probe per target). */
  intervalMs: number;
  /** Floor of the RTO, ms: a probe unanswered by then makes the uplink suspect (a late answer still counts). */
  timeoutMs: number;
  /** Targets that must answer for a round to count as a success (recovery). */
  quorum: number;
  /** Unanswered probe rounds (steady and confirmation burst) that confirm a suspicion. */
  downAfter: number;
  /** Good rounds among the last up_after + 2 (the latest good) before up again. */
  upAfter: number;
  /** Steady rounds in the rolling window for loss/RTT/jitter. */
  window: number;
  /** Degraded when loss (percent) in the window exceeds this. */
  degradedLossPct: number;
  /** Degraded when mean RTT (ms) in the window exceeds this. */
  degradedRttMs: number;
  /** What a degraded uplink does: keep its weight, a reduced weight, or leave the default route. */
  onDegraded: 'keep' | 'reduce' | 'remove';
}

export interface UplinkConfig {
  name: string;
  interface: string;
  /** Address and default path are learned from the system (`dhcp: true` or `learn: true`). */
  dhcp: boolean;
  /** Static uplinks: address with prefix length. */
  address?: { ip: Ipv4; prefixlen: number; network: Cidr };
  /** Static point-to-point uplinks: the peer (`inet A peer P/len`); the prefix length is the peer's. */
  peer?: Ipv4;
  /** Static uplinks: the gateway; may lie outside the prefix (then on-link). Absent with `peer`: `default dev IF`. */
  gateway?: Ipv4;
  weight: number;
  tier: number;
  /** Routing table number for this uplink (also its nexthop id): `table:`, else derived from the name. */
  table: number;
  /**
   * n such that the uplink's pinning mark is n << (the lowest set bit of pinning.markMask),
   * 1..(markMask >>> that bit); derived from the name (src/config/identity.ts), never from the position.
   */
  markIndex: number;
  monitor?: MonitorConfig;
  /** Source NAT for LAN traffic leaving this uplink (docs/policies.md); absent: none. */
  nat?: NatConfig;
}

/** `nat: masquerade` (the uplink's current address) or `nat: {snat: ADDRESS}`. */
export type NatConfig = { kind: 'masquerade' } | { kind: 'snat'; address: Ipv4 };

/** One `policies:` entry (docs/policies.md): which traffic uses which uplinks. First match wins. */
export interface PolicyConfig {
  name: string;
  /** "FILE:LINE:COL" of the entry, for messages. */
  at: string;
  /** Source networks; empty means any. */
  from: Cidr[];
  /** Destination networks; empty means any. */
  to: Cidr[];
  /** Input interface (`iif`); the router's own traffic comes from `lo`. */
  iif?: string;
  /** IANA protocol number (6 tcp, 17 udp, 132 sctp, 1 icmp). */
  ipProto?: number;
  /** Destination port ranges (`port:`); empty means any. */
  dport: PortRange[];
  /** Source port ranges (`source_port:`); empty means any. */
  sport: PortRange[];
  /** DSCP 0..63 (RFC 2474). */
  dscp?: number;
  /** Uplink names in order of preference. */
  use: string[];
  /** Never another uplink: unreachable while none of `use` is usable. */
  strict: boolean;
}

/** Flow pinning (docs/pinning.md): connections keep the uplink they first left through. */
export interface PinningConfig {
  enabled: boolean;
  /** The bits of the packet and conntrack marks uplinkd uses; contiguous, e.g. 0x7f000000. */
  markMask: number;
}

/** Where the daemon's read-only status page and Prometheus metrics listen (src/daemon/http.ts). */
export interface HttpListen {
  /** IPv4 literal; `localhost` in the file is read as 127.0.0.1 (IPv4 only, like the rest). */
  host: Ipv4;
  port: number;
}

export interface Config {
  /** Path the config was read from (for messages). */
  file: string;
  uplinks: UplinkConfig[];
  /** Interfaces whose networks go into every uplink table. */
  lan: string[];
  default: DefaultMode;
  /** Table holding the balanced default route; uplink tables default to tableBase+1+i. */
  tableBase: number;
  /** First rule priority of uplinkd's band (band is rulePriority .. rulePriority+999). */
  rulePriority: number;
  /** Route/rule/nexthop protocol number marking uplinkd's objects. */
  protocol: number;
  /**
   * Resilient nexthop group parameters for the balanced default (`ip nexthop ... type resilient`): bucket count,
   * idle and unbalanced timers in seconds (NHA_RES_GROUP_*, include/uapi/linux/nexthop.h).
   */
  resilient: { buckets: number; idleTimer: number; unbalancedTimer: number };
  /** Absent means off (configs built in code); the loader always sets it. */
  pinning?: PinningConfig;
  /** When given, the multipath hash uplinkd sets (system/sysctl.ts multipathHashSysctls): addresses, or the 5-tuple. */
  multipathHash?: 'l3' | 'l4';
  paths: {
    /** iproute2 table-name file uplinkd owns. */
    rtTables: string;
    /** iproute2 protocol-name file uplinkd owns. */
    rtProtos: string;
    /** Globs of DHCP lease files to read gateways from. */
    leases: string[];
    /** Unix control socket of the daemon. */
    controlSocket: string;
    /** Directory of hook executables run on uplink state changes. */
    hooksDir: string;
  };
  /** Traffic policies in file order (src/config/policies.ts); absent or empty: everything is balanced. */
  policies?: PolicyConfig[];
  /** `uplinkd exec` (src/nft/exec.ts): cgroup v2 directory, relative to the hierarchy's root, holding one cgroup per uplink. */
  exec?: { cgroup: string };
  /** Problems that do not stop the configuration ("FILE:LINE:COL: FIELD: message"). */
  warnings?: string[];
  /** Status page and metrics of `uplinkd run`; absent (the default): no socket is opened. */
  http?: { listen: HttpListen };
  daemon: {
    /** Full resync period, ms. */
    resyncMs: number;
    /** Coalescing delay after a kernel event, ms. */
    debounceMs: number;
  };
}
