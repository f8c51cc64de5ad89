// The lab's world as plain data: namespace names, interfaces and addresses.
// Everything uses documentation/shared address ranges and exists only inside
// the lab's namespaces.
import type { Cidr, Ipv4 } from '../src/model/types';
import { UplinkdError } from '../src/errors';
import type { LabFirewall } from './firewall';

export type UplinkMode = 'static' | 'dhcp';
export type LabDhcpClient = 'dhclient' | 'dhcpcd' | 'udhcpc' | 'networkd';
/**
 * How the providers' DHCP servers send the gateway: option 3 (router), option 121 (RFC 3442
 * classless static routes, default route only) without option 3, or both.
 */
export type LabDhcpGateway = 'router' | 'classless' | 'both';

export interface LabOptions {
  /** Namespace name prefix; default "ul-". */
  prefix?: string;
  /** One trunk NIC with 802.1Q VLANs 101/102 instead of one NIC per uplink. */
  vlan?: boolean;
  isp1?: UplinkMode;
  isp2?: UplinkMode;
  dhcpClient?: LabDhcpClient;
  /** Default 'router'. */
  dhcpGateway?: LabDhcpGateway;
  /**
   * A classless static route (option 121) one provider sends besides the default: `dst` via a second router of its
   * on the customer link, the address of the gateway with the last octet `viaHost` (the provider holds it too).
   */
  classlessRoute?: { provider: 'isp1' | 'isp2'; dst: Cidr; viaHost: number };
  /** Where state (pid/lease files, generated config) lives; default /run/uplinkd-lab. */
  stateRoot?: string;
}

export const DEFAULT_PREFIX = 'ul-';
export const DEFAULT_STATE_ROOT = '/run/uplinkd-lab';

/** Roles of the lab's namespaces; the namespace name is prefix + role. */
export const ROLES = ['lan', 'router', 'isp1', 'isp2', 'inet', 'switch'] as const;
export type Role = (typeof ROLES)[number];

export interface Provider {
  name: 'isp1' | 'isp2';
  /** Customer network handed to the router. */
  customerNet: Cidr;
  /** The provider's own address on the customer network (the router's gateway). */
  gateway: Ipv4;
  /** The router's address when the uplink is static. */
  staticAddress: Ipv4;
  prefixlen: number;
  dhcpRange: [Ipv4, Ipv4];
  /** Provider <-> internet host link (/30): provider side, internet side. */
  backbone: { provider: Ipv4; inet: Ipv4; prefixlen: number };
  vlanId: number;
  /** Router interface without and with VLANs. */
  routerIf: string;
  routerVlanIf: string;
}

export const PROVIDERS: readonly Provider[] = [
  {
    name: 'isp1',
    customerNet: '198.51.100.0/24',
    gateway: '198.51.100.1',
    staticAddress: '198.51.100.2',
    prefixlen: 24,
    dhcpRange: ['198.51.100.100', '198.51.100.150'],
    backbone: { provider: '100.64.1.1', inet: '100.64.1.2', prefixlen: 30 },
    vlanId: 101,
    routerIf: 'if1',
    routerVlanIf: 'vlan101',
  },
  {
    name: 'isp2',
    customerNet: '203.0.113.0/24',
    gateway: '203.0.113.1',
    staticAddress: '203.0.113.2',
    prefixlen: 24,
    dhcpRange: ['203.0.113.100', '203.0.113.150'],
    backbone: { provider: '100.64.2.1', inet: '100.64.2.2', prefixlen: 30 },
    vlanId: 102,
    routerIf: 'if2',
    routerVlanIf: 'vlan102',
  },
];

export const LAN = {
  network: '192.168.10.0/24',
  prefixlen: 24,
  routerIf: 'if0',
  routerAddress: '192.168.10.1',
  hostIf: 'eth0',
  hostAddress: '192.168.10.10',
} as const;

/** The internet host's service address (on its loopback), reachable through both providers. */
export const INTERNET_HOST = '192.0.2.80';

/** Interface names inside provider and internet namespaces. */
export const PROVIDER_CUSTOMER_IF = 'cust';
export const PROVIDER_BACKBONE_IF = 'wan';
/** Router trunk NIC in the VLAN lab. */
export const TRUNK_IF = 'eth0';

export interface LabUplink {
  name: 'isp1' | 'isp2';
  /** Interface in the router namespace. */
  interface: string;
  mode: UplinkMode;
  address: Ipv4;
  prefixlen: number;
  network: Cidr;
  gateway: Ipv4;
  /** Namespace of the provider. */
  providerNs: string;
  /** Lease file of the router's DHCP client (dhcp mode). */
  leaseFile?: string;
}

export interface LabInfo {
  prefix: string;
  vlan: boolean;
  /** The lab's own filters: nftables, or legacy iptables where the kernel lacks nftables' ip family (absent: nft). */
  firewall?: LabFirewall;
  dhcpClient: LabDhcpClient;
  stateDir: string;
  /** Generated uplinkd config for the router (isp1 weight 1, isp2 weight 3, balance). */
  configPath: string;
  /** Globs of the lease files the router's DHCP clients write. */
  leaseGlobs: string[];
  ns: { lan: string; router: string; isp1: string; isp2: string; inet: string; switch?: string };
  lan: { interface: string; network: Cidr; routerAddress: Ipv4; hostAddress: Ipv4 };
  uplinks: LabUplink[];
  internetHost: Ipv4;
}

/** Namespace name for a role. */
export function nsName(prefix: string, role: Role): string {
  return `${prefix}${role}`;
}

/** Throws unless the prefix makes safe, short namespace names. */
export function checkPrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9-]{0,11}$/.test(prefix))
    throw new UplinkdError('lab', `bad lab prefix '${prefix}': use 1-12 of a-z, 0-9 and '-', starting with a letter`);
}

/** The directory holding a lab's config, leases and pid files: `<stateRoot>/<prefix>`. */
export function stateDirOf(prefix: string, stateRoot = DEFAULT_STATE_ROOT): string {
  return `${stateRoot}/${prefix}`;
}
