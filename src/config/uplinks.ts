// Reading one `uplinks:` entry (and its `monitor:`) into a draft; cross-uplink checks are in cross.ts.
import { broadcastOf, contains, isCidr, isIpv4, networkOf, parseCidr, parseIpv4 } from '../model/ipv4';
import type { Ipv4 } from '../model/types';
import { MONITOR_DEFAULTS, DEFAULTS } from './defaults';
import type { Field, Reader } from './reader';
import type { MonitorConfig, ProbeMethod, UplinkConfig } from './types';
import { ifnameProblem, isHostname, tableNameProblem, quoted } from './values';

export const UPLINK_KEYS = ['name', 'interface', 'dhcp', 'learn', 'address', 'peer', 'gateway', 'weight', 'tier', 'table', 'monitor', 'nat'];
export const MONITOR_KEYS = [
  'targets', 'method', 'port', 'interval', 'timeout', 'quorum', 'down_after', 'up_after', 'window',
  'degraded_loss', 'degraded_rtt', 'on_degraded',
];
const PROBE_METHODS: readonly ProbeMethod[] = ['icmp', 'tcp', 'http', 'https', 'dns'];
export const MAX_TABLE = 2 ** 32 - 1;

/** An uplink as read, before table numbers are assigned; values are absent where they were invalid. */
export interface UplinkDraft {
  field: Field;
  fields: Map<string, Field>;
  name?: string;
  interface?: string;
  dhcp: boolean;
  address?: UplinkConfig['address'];
  peer?: Ipv4;
  gateway?: Ipv4;
  weight: number;
  tier: number;
  /** The `table:` the user set, if valid. */
  table?: number;
  monitor?: MonitorConfig;
}

/**
 * Reads one `uplinks[i]` mapping into a draft (name, interface, static address/peer/gateway or dhcp, weight, tier,
 * table, monitor); each bad field is reported on `r` and left out of the draft. Undefined when `f` is not a mapping.
 * Checks across uplinks (unique names, tables) are checkUplinkSet()'s and assignTables()'s.
 */
export function readUplink(r: Reader, f: Field): UplinkDraft | undefined {
  const fields = r.map(f, UPLINK_KEYS);
  if (!fields) return undefined;
  const opt = (key: string) => fields.get(key);
  const draft: UplinkDraft = { field: f, fields, dhcp: false, weight: DEFAULTS.weight, tier: DEFAULTS.tier };

  const nameField = r.required(f, fields, 'name');
  if (nameField) {
    const name = r.string(nameField, 'a name');
    const problem = name === undefined ? undefined : tableNameProblem(name);
    if (problem) r.report(nameField.at, nameField.path, problem);
    else draft.name = name;
  }

  const ifField = r.required(f, fields, 'interface');
  if (ifField) draft.interface = readIfname(r, ifField);

  // `learn: true` says what `dhcp: true` means: address, peer and default path come from the system
  // (a DHCP client, pppd, a modem manager). Either key; both only when they agree.
  const dhcpField = opt('dhcp');
  const learnField = opt('learn');
  const dhcp = dhcpField && r.bool(dhcpField);
  const learn = learnField && r.bool(learnField);
  if (dhcpField && learnField && dhcp !== undefined && learn !== undefined && dhcp !== learn) {
    r.report(learnField.at, learnField.path, `learn: ${learn} contradicts dhcp: ${dhcp} (they mean the same; keep one)`);
  }
  draft.dhcp = (learn ?? dhcp) ?? false;
  const learnKey = learnField ? 'learn' : 'dhcp';

  const addressField = opt('address');
  const peerField = opt('peer');
  const gatewayField = opt('gateway');
  // A dhcp/learn that is not a boolean (`dhcp: yes`) was reported; whether address and gateway belong
  // is unknown then, so saying they are missing (or not allowed) would only bury the real error.
  if ((dhcpField && dhcp === undefined) || (learnField && learn === undefined)) {
    // nothing more to check about the address
  } else if (draft.dhcp) {
    for (const extra of [addressField, peerField, gatewayField]) {
      if (extra) r.report(extra.at, extra.path,
        `not allowed with ${learnKey}: true (it is learned from the system; remove it or set ${learnKey}: false)`);
    }
  } else {
    const why = 'a static uplink needs address and gateway (or peer, for a point-to-point link); set learn: true if they come from the system';
    const a = r.required(f, fields, 'address', why);
    if (a) draft.address = readHostAddress(r, a);
    if (peerField) draft.peer = readPeer(r, peerField, draft.address);
    // A point-to-point uplink needs no gateway: `default dev IF` reaches the peer.
    const g = peerField ? gatewayField : r.required(f, fields, 'gateway', why);
    if (g) draft.gateway = readGateway(r, g, draft.address, draft.peer);
  }

  const weight = opt('weight');
  if (weight) draft.weight = r.number(weight, 1, 256) ?? draft.weight;
  const tier = opt('tier');
  if (tier) draft.tier = r.number(tier, 0, 1_000_000) ?? draft.tier;
  const table = opt('table');
  if (table) draft.table = r.number(table, 1, MAX_TABLE);
  const monitor = opt('monitor');
  if (monitor) draft.monitor = readMonitor(r, monitor);
  return draft;
}

/**
 * An interface name: a non-empty string of at most 15 characters (IFNAMSIZ - 1, include/uapi/linux/if.h) without '/', ':'
 * or whitespace, not '.' or '..' (net/core/dev.c dev_valid_name()); reports and returns undefined otherwise.
 */
export function readIfname(r: Reader, f: Field): string | undefined {
  const name = r.string(f, 'an interface name');
  if (name === undefined) return undefined;
  const problem = ifnameProblem(name);
  if (problem) {
    r.report(f.at, f.path, problem);
    return undefined;
  }
  return name;
}

/** Why an address cannot be an uplink's own address or gateway. */
function unusableAddress(ip: Ipv4): string | undefined {
  const first = parseIpv4(ip) >>> 24;
  if (first === 0) return `${ip} is in 0.0.0.0/8 ("this network")`;
  if (first === 127) return `${ip} is a loopback address`;
  if (first >= 224) return `${ip} is a multicast or reserved address`;
  return undefined;
}

function readHostAddress(r: Reader, f: Field): UplinkConfig['address'] {
  const text = r.string(f, 'an address with prefix length, e.g. 198.51.100.2/24');
  if (text === undefined) return undefined;
  if (!isCidr(text)) {
    const hint = isIpv4(text) ? 'the prefix length is missing' : `${quoted(text)} is not an IPv4 address with prefix length`;
    r.report(f.at, f.path, `${hint} (expected a.b.c.d/len, e.g. 198.51.100.2/24)`);
    return undefined;
  }
  const { ip, prefixlen } = parseCidr(text);
  const network = networkOf(ip, prefixlen);
  const problem = prefixlen === 0 ? `${text} has prefix length 0` : unusableAddress(ip)
    ?? (prefixlen <= 30 && `${ip}/${prefixlen}` === network ? `${ip} is the network address of ${network}` : undefined)
    ?? (prefixlen <= 30 && ip === broadcastOf(ip, prefixlen) ? `${ip} is the broadcast address of ${network}` : undefined);
  if (problem) {
    r.report(f.at, f.path, `${problem} (expected the uplink's own host address with its prefix length, e.g. 198.51.100.2/24)`);
    return undefined;
  }
  return { ip, prefixlen, network };
}

/** A point-to-point peer: a host address other than the uplink's own. */
function readPeer(r: Reader, f: Field, address: UplinkConfig['address']): Ipv4 | undefined {
  const ip = readIpv4Field(r, f, "the peer's address, e.g. 10.64.0.1");
  if (ip !== undefined && address && ip === address.ip) {
    r.report(f.at, f.path, `${ip} is the uplink's own address (expected the address of the other end of the link)`);
    return undefined;
  }
  return ip;
}

function readIpv4Field(r: Reader, f: Field, what: string): Ipv4 | undefined {
  const ip = r.string(f, 'an IPv4 address');
  if (ip === undefined) return undefined;
  if (!isIpv4(ip)) {
    r.report(f.at, f.path, `${quoted(ip)} is not an IPv4 address (expected a.b.c.d)`);
    return undefined;
  }
  const unusable = unusableAddress(ip);
  if (unusable) {
    r.report(f.at, f.path, `${unusable} (expected ${what})`);
    return undefined;
  }
  return ip;
}

/**
 * The gateway: inside the address's network (or the peer's), or outside it, which makes it an
 * on-link gateway (`via G dev IF onlink`, as cloud providers hand out with /32 addresses).
 * Inside the network it must be a host address other than the uplink's own.
 */
function readGateway(r: Reader, f: Field, address: UplinkConfig['address'], peer: Ipv4 | undefined): Ipv4 | undefined {
  const ip = readIpv4Field(r, f, "the gateway's address");
  if (ip === undefined || !address) return ip; // the address is invalid or absent; that is reported already
  const net = peer === undefined ? address.network : `${peer}/32`;
  const hostOnly = `(expected another host address inside ${net}, or one outside it for an on-link gateway)`;
  const problem = ip === address.ip ? `${ip} is the uplink's own address ${hostOnly}`
    : !contains(net, ip) || peer !== undefined ? undefined
    : address.prefixlen <= 30 && `${ip}/${address.prefixlen}` === net ? `${ip} is the network address of ${net} ${hostOnly}`
    : address.prefixlen <= 30 && ip === broadcastOf(ip, address.prefixlen) ? `${ip} is the broadcast address of ${net} ${hostOnly}`
    : undefined;
  if (problem) {
    r.report(f.at, f.path, problem);
    return undefined;
  }
  return ip;
}

function readMonitor(r: Reader, f: Field): MonitorConfig | undefined {
  const fields = r.map(f, MONITOR_KEYS);
  if (!fields) return undefined;
  const opt = (key: string) => fields.get(key);
  const m: MonitorConfig = { targets: [], ...MONITOR_DEFAULTS };

  const targetsField = r.required(f, fields, 'targets', 'a list of IPv4 addresses or host names to probe');
  const targetItems = targetsField && r.seq(targetsField, 'IPv4 addresses or host names');
  if (targetsField && targetItems?.length === 0)
    r.report(targetsField.at, targetsField.path, 'the list is empty (expected at least one IPv4 address or host name)');
  for (const item of targetItems ?? []) {
    const target = r.string(item, 'an IPv4 address or host name');
    if (target === undefined) continue;
    if (!isIpv4(target) && !isHostname(target)) {
      r.report(item.at, item.path, `${quoted(target)} is neither an IPv4 address nor a host name`);
    } else if (m.targets.includes(target)) {
      r.report(item.at, item.path, `${quoted(target)} is listed twice (expected each target once)`);
    } else {
      m.targets.push(target);
    }
  }

  const method = opt('method');
  if (method) m.method = r.oneOf(method, PROBE_METHODS) ?? m.method;
  const port = opt('port');
  if (port) {
    if (m.method === 'icmp') r.report(port.at, port.path, 'does not apply to method icmp (expected method tcp, http, https or dns)');
    else m.port = r.number(port, 1, 65535);
  }
  const interval = opt('interval');
  if (interval) m.intervalMs = r.duration(interval, 10) ?? m.intervalMs;
  const timeout = opt('timeout');
  if (timeout) m.timeoutMs = r.duration(timeout, 1) ?? m.timeoutMs;
  const quorum = opt('quorum');
  if (quorum) {
    const n = r.number(quorum, 1, 1000);
    if (n !== undefined && targetItems && targetItems.length > 0 && n > targetItems.length) {
      r.report(quorum.at, quorum.path,
        `${n} is more than the ${targetItems.length} target(s) (expected 1 to ${targetItems.length})`);
    } else if (n !== undefined) {
      m.quorum = n;
    }
  }
  const downAfter = opt('down_after');
  if (downAfter) m.downAfter = r.number(downAfter, 1, 10_000) ?? m.downAfter;
  const upAfter = opt('up_after');
  if (upAfter) m.upAfter = r.number(upAfter, 1, 10_000) ?? m.upAfter;
  const window = opt('window');
  if (window) m.window = r.number(window, 1, 10_000) ?? m.window;
  const loss = opt('degraded_loss');
  if (loss) m.degradedLossPct = r.number(loss, 0, 100, false) ?? m.degradedLossPct;
  const rtt = opt('degraded_rtt');
  if (rtt) m.degradedRttMs = r.duration(rtt, 1) ?? m.degradedRttMs;
  const onDegraded = opt('on_degraded');
  if (onDegraded) m.onDegraded = r.oneOf(onDegraded, ['keep', 'reduce', 'remove'] as const) ?? m.onDegraded;
  return m;
}

