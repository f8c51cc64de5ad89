// busybox udhcpc keeps no lease file; it hands the lease to its script in environment
// variables. The script below (docs/dhcp-clients.md) records them as /run/udhcpc/<iface>.lease
// and then runs the usual script, so uplinkd can read them like any other lease. busybox
// asks for option 121 only when told (`udhcpc -O staticroutes`); it hands 121 over as
// $staticroutes and 249 as $msstaticroutes ("dst/len gw dst/len gw ...").
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import { UplinkdError } from '../errors';
import { firstIpv4, isIpv4 } from '../model/ipv4';
import { parseKeyValues } from './keyvalue';
import { applyRoutingOptions, parseClasslessText, type RoutingOptions } from './classless';

/** Text of a udhcpc script (`udhcpc -s FILE`) that records the lease in `dir`, then runs `next`. */
export function udhcpcLeaseScript(dir = '/run/udhcpc', next = '/etc/udhcpc/default.script'): string {
  return `#!/bin/sh
# udhcpc script: record the lease for uplinkd in ${dir}/<interface>.lease, then run ${next}.
lease_file="${dir}/$interface.lease"
case "$1" in
  bound|renew)
    mkdir -p "${dir}"
    printf 'interface=%s\\nip=%s\\nsubnet=%s\\nrouter=%s\\nstaticroutes=%s\\nmsstaticroutes=%s\\nlease=%s\\n' \\
      "$interface" "$ip" "$subnet" "$router" "$staticroutes" "$msstaticroutes" "$lease" > "$lease_file.tmp" &&
      mv "$lease_file.tmp" "$lease_file"
    ;;
  deconfig|leasefail|nak)
    rm -f "$lease_file"
    ;;
esac
exec ${next} "$@"
`;
}

/**
 * The lease recorded by udhcpcLeaseScript: interface=, ip=, router= (space-separated),
 * staticroutes= / msstaticroutes= (options 121 / 249, empty when not sent; absent in files
 * written by the older script), lease= (seconds, counted from the file's mtime).
 * Throws UplinkdError('io') when malformed.
 */
export function parseUdhcpcLease(text: string, file: string, mtimeMs: number): Lease {
  const kv = parseKeyValues(text);
  const iface = kv.get('interface') || path.basename(file).replace(/\.lease$/, '');
  if (!kv.has('ip')) throw new UplinkdError('io', 'udhcpc lease file has no ip=');
  const lease: Lease = { interface: iface, client: 'udhcpc', file };
  const ip = kv.get('ip') ?? '';
  if (isIpv4(ip)) lease.address = ip;
  const routing: RoutingOptions = {};
  const router = firstIpv4(kv.get('router') ?? '');
  if (router) routing.router = router;
  const classless = kv.get('staticroutes') ?? '';
  if (classless.trim() !== '') routing.classless = parseClasslessText(classless);
  const ms = kv.get('msstaticroutes') ?? '';
  if (ms.trim() !== '') routing.msClassless = parseClasslessText(ms);
  applyRoutingOptions(lease, routing);
  const seconds = kv.get('lease') ?? '';
  if (/^\d+$/.test(seconds)) lease.expiresAt = mtimeMs + Number(seconds) * 1000;
  return lease;
}
