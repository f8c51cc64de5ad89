// busybox udhcpc keeps no lease file; it hands the lease to its script in environment
// variables. The script below (docs/dhcp-clients.md) records them as /run/udhcpc/<iface>.lease
// and then runs the usual script, so uplinkd can read them like any other lease.
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import { UplinkdError } from '../errors';
import { firstIpv4, isIpv4 } from './ipv4';
import { parseKeyValues } from './keyvalue';

/** Text of a udhcpc script (`udhcpc -s FILE`) that records the lease in `dir`, then runs `next`. */
export function udhcpcLeaseScript(dir = '/run/udhcpc', next = '/etc/udhcpc/default.script'): string {
  return `#!/bin/sh
# udhcpc script: record the lease for uplinkd in ${dir}/<interface>.lease, then run ${next}.
lease_file="${dir}/$interface.lease"
case "$1" in
  bound|renew)
    mkdir -p "${dir}"
    printf 'interface=%s\\nip=%s\\nsubnet=%s\\nrouter=%s\\nlease=%s\\n' \\
      "$interface" "$ip" "$subnet" "$router" "$lease" > "$lease_file.tmp" &&
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
 * lease= (seconds, counted from the file's mtime). Throws UplinkdError('io') when malformed.
 */
export function parseUdhcpcLease(text: string, file: string, mtimeMs: number): Lease {
  const kv = parseKeyValues(text);
  const iface = kv.get('interface') || path.basename(file).replace(/\.lease$/, '');
  if (!kv.has('ip')) throw new UplinkdError('io', 'udhcpc lease file has no ip=');
  const lease: Lease = { interface: iface, client: 'udhcpc', file };
  const ip = kv.get('ip') ?? '';
  if (isIpv4(ip)) lease.address = ip;
  const gateway = firstIpv4(kv.get('router') ?? '');
  if (gateway) lease.gateway = gateway;
  const seconds = kv.get('lease') ?? '';
  if (/^\d+$/.test(seconds)) lease.expiresAt = mtimeMs + Number(seconds) * 1000;
  return lease;
}
