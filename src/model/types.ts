// Plain data for the kernel objects uplinkd reads and writes (IPv4).
// Interfaces are referred to by name; the kernel port maps names to indexes.
// Wire encoding lives in src/netlink, planning in src/plan; this file has no logic.

/** A prefix in CIDR form, e.g. "198.51.100.0/24"; a host is "/32". */
export type Cidr = string;
/** A dotted-quad IPv4 address, e.g. "198.51.100.1". */
export type Ipv4 = string;

export type RouteScope = 'universe' | 'link' | 'host';
export type RouteType = 'unicast' | 'local' | 'broadcast' | 'blackhole' | 'unreachable' | 'prohibit' | 'other';

export interface MultipathHop {
  gateway?: Ipv4;
  dev: string;
  /** 1..256, as `ip route ... nexthop ... weight N` */
  weight: number;
}

export interface Route {
  table: number;
  dst: Cidr;
  type: RouteType;
  protocol: number;
  scope: RouteScope;
  /** RTA_PRIORITY, `metric` in iproute2; absent means 0. */
  metric?: number;
  gateway?: Ipv4;
  dev?: string;
  /** Preferred source (RTA_PREFSRC). */
  src?: Ipv4;
  /** Nexthop object or group id (RTA_NH_ID). */
  nhid?: number;
  /** RTA_MULTIPATH, for routes read from the kernel that use it. */
  multipath?: MultipathHop[];
  /** RTNH_F_LINKDOWN / RTNH_F_DEAD reported by the kernel (read only). */
  linkdown?: boolean;
  /** RTNH_F_ONLINK: the gateway is on the device's link although no connected route covers it (`onlink`). */
  onlink?: boolean;
}

export type RuleAction = 'lookup' | 'blackhole' | 'unreachable' | 'prohibit' | 'other';

export interface Rule {
  priority: number;
  action: RuleAction;
  /** Table for action lookup. */
  table: number;
  protocol: number;
  src?: Cidr;
  dst?: Cidr;
  iif?: string;
  oif?: string;
  fwmark?: number;
  fwmask?: number;
  /** `suppress_prefixlength N` */
  suppressPrefixlen?: number;
  invert?: boolean;
  /** FRA_IP_PROTO, `ipproto N` (IANA protocol number: 6 tcp, 17 udp, 132 sctp). */
  ipProto?: number;
  /** FRA_SPORT_RANGE, `sport START[-END]` (inclusive). */
  sport?: PortRange;
  /** FRA_DPORT_RANGE, `dport START[-END]` (inclusive). */
  dport?: PortRange;
  /** fib_rule_hdr.tos, `tos N`: the RFC 1349 TOS bits only (mask 0x1e, the kernel refuses others). Absent means any. */
  tos?: number;
  /** FRA_DSCP (Linux 6.15+), 0..63: the full DSCP (RFC 2474), which `tos` cannot express. */
  dscp?: number;
  /** FRA_L3MDEV, `l3mdev`: look up the table of the packet's VRF device. */
  l3mdev?: boolean;
  /**
   * Selectors uplinkd reads but never sets (uidrange, tun_id, goto, suppress_ifgroup, flowlabel,
   * port masks, realms), as `name=hex` text, sorted: a rule carrying any of them is a different rule.
   */
  unmodelled?: string[];
}

/** An inclusive port range, both ends 1..65535 (struct fib_rule_port_range). */
export interface PortRange {
  start: number;
  end: number;
}

export interface NexthopGroupMember {
  id: number;
  /** 1..256 */
  weight: number;
}

export interface ResilientParams {
  buckets: number;
  /** NHA_RES_GROUP_IDLE_TIMER in seconds (on the wire in clock_t, USER_HZ = 100 a second; src/netlink/nexthop.ts converts). */
  idleTimer: number;
  /** NHA_RES_GROUP_UNBALANCED_TIMER in seconds (clock_t on the wire); 0 = never force a migration. */
  unbalancedTimer: number;
}

export interface Nexthop {
  id: number;
  protocol: number;
  gateway?: Ipv4;
  dev?: string;
  /** RTNH_F_ONLINK in nhm_flags: the gateway is on the device's link without a connected route (`onlink`). */
  onlink?: boolean;
  blackhole?: boolean;
  /** Present for a group. */
  group?: NexthopGroupMember[];
  /** Present for a resilient group. */
  resilient?: ResilientParams;
}

export interface Link {
  index: number;
  name: string;
  /** IFF_UP: administratively up. */
  up: boolean;
  /** IFF_LOWER_UP: carrier. */
  lowerUp: boolean;
  /** IFLA_INFO_KIND, e.g. "veth", "vlan", "bridge"; absent for plain NICs. */
  kind?: string;
  /** IFF_POINTOPOINT: a link with exactly one peer (PPP, many tun devices); everything sent reaches the peer. */
  pointToPoint?: boolean;
}

export interface Address {
  dev: string;
  address: Ipv4;
  prefixlen: number;
  /** The peer of a point-to-point address (`inet A peer P/len`: IFA_ADDRESS differs from IFA_LOCAL); prefixlen is the peer's. */
  peer?: Ipv4;
  /** IFA_F_PERMANENT unset: the address has a lifetime, as DHCP clients set it. */
  dynamic: boolean;
  /** IFA_F_SECONDARY */
  secondary: boolean;
  scope: RouteScope;
}

/** Everything uplinkd reads from the kernel (IPv4 only). */
export interface KernelState {
  links: Link[];
  addresses: Address[];
  routes: Route[];
  rules: Rule[];
  nexthops: Nexthop[];
}

/** The kernel objects uplinkd wants to exist; all carry uplinkd's protocol number. */
export interface DesiredState {
  /** plan() shares this array (and its frozen routes) between plans with the same inputs (src/plan/table-routes.ts). */
  routes: readonly Route[];
  rules: Rule[];
  nexthops: Nexthop[];
}

/**
 * One change to the kernel. `standIn`: part of a stand-in swap (src/reconcile/diff.ts standInSwap): a temporary
 * nexthop, or the balanced default moved onto one and back; not a restoration of drift, and logged at debug level.
 */
export type Change =
  | { op: 'add' | 'replace' | 'del'; kind: 'route'; route: Route; standIn?: true }
  | { op: 'add' | 'del'; kind: 'rule'; rule: Rule; standIn?: true }
  | { op: 'add' | 'replace' | 'del'; kind: 'nexthop'; nexthop: Nexthop; standIn?: true };

/** RT_TABLE_MAIN (include/uapi/linux/rtnetlink.h): the main routing table. */
export const MAIN_TABLE = 254;

/** The highest port a rule's range can end at: fib_rule_port_range_valid() (include/net/fib_rules.h) refuses 0xffff. */
export const MAX_RULE_PORT = 65534;
