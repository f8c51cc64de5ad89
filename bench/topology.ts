// uplinkd configurations for the benchmark namespaces. Every path uplinkd writes or listens
// on points into the namespace's state dir, so no run touches the host's /etc or /run/uplinkd.

export interface BenchUplink {
  name: string;
  interface: string;
  /** `a.b.c.d/len`; absent for a DHCP uplink. */
  address?: string;
  gateway?: string;
  weight: number;
}

/** Uplink i: `u<i>` with 10.1.<i>.2/24, gateway 10.1.<i>.1, weights 1..4 (i < 250). */
export function scaleUplinks(n: number): BenchUplink[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `up${i}`,
    interface: `u${i}`,
    address: `10.1.${i}.2/24`,
    gateway: `10.1.${i}.1`,
    weight: 1 + (i % 4),
  }));
}

export const LAN_IF = 'lan0';
export const LAN_ADDRESS = '192.168.0.1/24';

export function renderConfig(uplinks: readonly BenchUplink[], stateDir: string, extra = ''): string {
  const lines = ['uplinks:'];
  for (const u of uplinks) {
    lines.push(`  - name: ${u.name}`, `    interface: ${u.interface}`);
    if (u.address === undefined) lines.push('    dhcp: true');
    else lines.push(`    address: ${u.address}`, `    gateway: ${u.gateway}`);
    lines.push(`    weight: ${u.weight}`);
  }
  lines.push(
    `lan: [${LAN_IF}]`,
    'default: balance',
    'paths:',
    `  rt_tables: ${stateDir}/rt_tables.conf`,
    `  rt_protos: ${stateDir}/rt_protos.conf`,
    `  control_socket: ${stateDir}/control.sock`,
    `  hooks_dir: ${stateDir}/hooks.d`,
    `  leases: ["${stateDir}/leases/*.lease"]`,
  );
  if (extra) lines.push(extra.trimEnd());
  return lines.join('\n') + '\n';
}

/** Interfaces and static addresses of a router with these uplinks and the LAN interface. */
export function routerSpec(uplinks: readonly BenchUplink[]): { interfaces: string[]; addresses: Record<string, string> } {
  const addresses: Record<string, string> = { [LAN_IF]: LAN_ADDRESS };
  for (const u of uplinks) if (u.address !== undefined) addresses[u.interface] = u.address;
  return { interfaces: [LAN_IF, ...uplinks.map((u) => u.interface)], addresses };
}
