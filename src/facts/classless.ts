// Classless static routes (DHCP option 121, RFC 3442; Microsoft's option 249 has the same
// encoding) as the lease readers find them, and the rule that picks a lease's gateway:
// when a server sends option 121 the client MUST ignore the router option 3 (RFC 3442,
// "DHCP Client Behavior"), so the gateway is the 0.0.0.0/0 entry's router, if any.
import type { ClasslessRoute, Lease } from '../model/facts';
import type { Ipv4 } from '../model/types';
import { UplinkdError } from '../errors';
import { isIpv4 } from '../model/ipv4';

/**
 * Decodes an RFC 3442 option body: per route one width octet (0..32), the
 * ceil(width/8) significant octets of the destination, then 4 octets of router.
 * Returns the routes in the server's order. Throws UplinkdError('io') for a
 * width over 32 or a body that ends inside a route.
 */
export function decodeClasslessRoutes(bytes: ArrayLike<number>): ClasslessRoute[] {
  const routes: ClasslessRoute[] = [];
  let i = 0;
  while (i < bytes.length) {
    const width = bytes[i];
    if (width > 32) throw new UplinkdError('io', `classless route width ${width} is over 32 (RFC 3442)`);
    const significant = Math.ceil(width / 8);
    if (i + 1 + significant + 4 > bytes.length) throw new UplinkdError('io', 'classless static route option ends inside a route');
    const dst = [0, 0, 0, 0];
    for (let k = 0; k < significant; k++) dst[k] = bytes[i + 1 + k];
    const g = i + 1 + significant;
    routes.push({ dst: `${maskAddress(dst, width)}/${width}`, gateway: `${bytes[g]}.${bytes[g + 1]}.${bytes[g + 2]}.${bytes[g + 3]}` });
    i = g + 4;
  }
  return routes;
}

/** Host bits cleared: RFC 3442 lets a server send a destination with bits set past the width. */
function maskAddress(octets: number[], width: number): Ipv4 {
  return octets.map((o, k) => {
    const bits = Math.max(0, Math.min(8, width - 8 * k));
    return o & ((0xff << (8 - bits)) & 0xff);
  }).join('.');
}

/**
 * Routes written as text by networkd (`CLASSLESS_ROUTES=10.0.0.0/8,192.0.2.1 0.0.0.0/0,192.0.2.1`)
 * or busybox udhcpc (`staticroutes=10.0.0.0/8 192.0.2.1 0.0.0.0/0 192.0.2.1`): destination and
 * router alternate, separated by spaces or commas. Throws UplinkdError('io') when malformed.
 */
export function parseClasslessText(text: string): ClasslessRoute[] {
  const words = text.split(/[\s,]+/).filter((w) => w !== '');
  if (words.length % 2 !== 0) throw new UplinkdError('io', `classless routes "${text}" are not destination/router pairs`);
  const routes: ClasslessRoute[] = [];
  for (let i = 0; i < words.length; i += 2) {
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(words[i]);
    if (!m || !isIpv4(m[1]) || Number(m[2]) > 32 || !isIpv4(words[i + 1])) {
      throw new UplinkdError('io', `unreadable classless route "${words[i]} ${words[i + 1]}"`);
    }
    const width = Number(m[2]);
    routes.push({ dst: `${maskAddress(m[1].split('.').map(Number), width)}/${width}`, gateway: words[i + 1] });
  }
  return routes;
}

/** What a lease file said about routing, before RFC 3442 picks the gateway. */
export interface RoutingOptions {
  /** First address of option 3 (router). */
  router?: Ipv4;
  /** Option 121 (RFC 3442), when the server sent it. */
  classless?: ClasslessRoute[];
  /** Option 249 (Microsoft's pre-RFC code for the same thing), when the server sent it. */
  msClassless?: ClasslessRoute[];
}

/**
 * Sets `router`, `classlessRoutes`, `classlessOption` and `gateway` on a lease. Option 121 wins
 * over 249 (clients that know 121 ignore 249 when both come); when either is present the gateway
 * is its 0.0.0.0/0 entry's router and option 3 is ignored (RFC 3442, "DHCP Client
 * Behavior"); a default entry with router 0.0.0.0 (a device route) gives no gateway.
 */
export function applyRoutingOptions(lease: Lease, options: RoutingOptions): Lease {
  if (options.router !== undefined) lease.router = options.router;
  const [routes, code] = options.classless !== undefined ? [options.classless, 121 as const]
    : options.msClassless !== undefined ? [options.msClassless, 249 as const] : [undefined, undefined];
  if (routes === undefined || code === undefined) {
    if (options.router !== undefined) lease.gateway = options.router;
    return lease;
  }
  lease.classlessRoutes = routes;
  lease.classlessOption = code;
  const def = routes.find((r) => r.dst === '0.0.0.0/0' && r.gateway !== '0.0.0.0');
  if (def) lease.gateway = def.gateway;
  return lease;
}
