// dhcpcd (9.x) lease files: /var/lib/dhcpcd/<iface>.lease or <iface>-<ssid>.lease hold
// the server's DHCP message verbatim (BOOTP header + options, no IP/UDP header);
// dhcpcd takes the file's mtime as the time the lease was issued (dhcpcd(8), FILES).
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import { UplinkdError } from '../errors';
import { ipv4FromBytes } from '../model/ipv4';
import { applyRoutingOptions, decodeClasslessRoutes, type RoutingOptions } from './classless';

const YIADDR = 16;
const SNAME = 44;
const FILE = 108;
const COOKIE = 236;
const OPTIONS = 240;
const MAGIC = [99, 130, 83, 99];

const OPT_PAD = 0;
const OPT_END = 255;
const OPT_ROUTERS = 3;
const OPT_LEASE_TIME = 51;
const OPT_OVERLOAD = 52;
const OPT_CLASSLESS = 121; // RFC 3442
const OPT_MS_CLASSLESS = 249; // Microsoft's code for the RFC 3442 encoding
const INFINITE = 0xffffffff;

/** True when the bytes look like a BOOTP message with the DHCP magic cookie. */
export function isDhcpMessage(bytes: Uint8Array): boolean {
  return bytes.length >= OPTIONS && MAGIC.every((b, i) => bytes[COOKIE + i] === b);
}

/** Options of one region; later occurrences of a code are concatenated (RFC 3396). */
function readOptions(bytes: Uint8Array, start: number, end: number, into: Map<number, number[]>): void {
  let i = start;
  while (i < end) {
    const code = bytes[i];
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (code === OPT_END) return;
    if (i + 1 >= end) throw new UplinkdError('io', 'truncated DHCP option');
    const len = bytes[i + 1];
    if (i + 2 + len > end) throw new UplinkdError('io', `DHCP option ${code} runs past the message`);
    into.set(code, [...(into.get(code) ?? []), ...bytes.subarray(i + 2, i + 2 + len)]);
    i += 2 + len;
  }
}

function options(bytes: Uint8Array): Map<number, number[]> {
  const found = new Map<number, number[]>();
  readOptions(bytes, OPTIONS, bytes.length, found);
  const overload = found.get(OPT_OVERLOAD)?.[0] ?? 0;
  if (overload & 1) readOptions(bytes, FILE, FILE + 128, found);
  if (overload & 2) readOptions(bytes, SNAME, SNAME + 64, found);
  return found;
}

/**
 * Interface from a dhcpcd lease file name. Wireless leases are `<iface>-<ssid>.lease`,
 * and interface names may contain `-` too, so a name is split only at a known interface.
 */
export function dhcpcdInterface(file: string, knownInterfaces: Iterable<string>): string {
  const stem = path.basename(file).replace(/\.lease$/, '');
  let best: string | undefined;
  for (const name of knownInterfaces) {
    if (name === stem) return name;
    if (stem.startsWith(`${name}-`) && (!best || name.length > best.length)) best = name;
  }
  return best ?? stem;
}

/**
 * The lease in a dhcpcd lease file. `mtimeMs` is the file's modification time, which
 * dhcpcd sets when it writes the lease. Throws UplinkdError('io') for a malformed message.
 */
export function parseDhcpcdLease(bytes: Uint8Array, file: string, mtimeMs: number, knownInterfaces: Iterable<string> = []): Lease {
  if (!isDhcpMessage(bytes)) throw new UplinkdError('io', 'not a DHCP message (no magic cookie)');
  const opts = options(bytes);
  const lease: Lease = { interface: dhcpcdInterface(file, knownInterfaces), client: 'dhcpcd', file };
  const yiaddr = ipv4FromBytes(bytes, YIADDR);
  if (yiaddr !== '0.0.0.0') lease.address = yiaddr;
  const routing: RoutingOptions = {};
  const routers = opts.get(OPT_ROUTERS);
  if (routers && routers.length >= 4) routing.router = ipv4FromBytes(Uint8Array.from(routers), 0);
  const classless = opts.get(OPT_CLASSLESS);
  if (classless) routing.classless = decodeClasslessRoutes(classless);
  const msClassless = opts.get(OPT_MS_CLASSLESS);
  if (msClassless) routing.msClassless = decodeClasslessRoutes(msClassless);
  applyRoutingOptions(lease, routing);
  const leaseTime = opts.get(OPT_LEASE_TIME);
  if (leaseTime && leaseTime.length === 4) {
    const seconds = ((leaseTime[0] << 24) | (leaseTime[1] << 16) | (leaseTime[2] << 8) | leaseTime[3]) >>> 0;
    if (seconds !== INFINITE) lease.expiresAt = mtimeMs + seconds * 1000;
  }
  return lease;
}
