// A small lab for the kinds of uplink (issue 8): a router with a LAN host and N providers, each
// provider on its own veth and each reaching one internet host. What differs between the kinds
// is how the router's side and the provider's customer side of each veth are addressed, given as
// iproute2 commands. Providers filter customer sources strictly (BCP 38) and do not NAT, so a
// reply leaving through the wrong uplink is dropped, as by a real provider.
//
//   lan host --- router --wan1--- p1 ---+
//   (eth0)      (lan0)  --wan2--- p2 ---+--- inet host (192.0.2.80 on lo)
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { inNs, ipIn, run } from './exec';
import { killNamespaceProcesses, listNamespaces } from './lab';
import { checkPrefix, INTERNET_HOST } from './topology';

export interface KindUplink {
  name: string;
  /** The router's interface towards this provider. */
  routerIf: string;
  /** The router's address on it, which the internet host must reach. */
  address: string;
  /** `ip -batch` lines in the router after the link exists (address, the client's routes). */
  router: string[];
  /** `ip -batch` lines in the provider for its customer side, interface `cust`. */
  provider: string[];
  /**
   * Model a point-to-point link on a veth: both ends NOARP with one MAC address, so every frame
   * reaches the other end without ARP, as on PPP.
   */
  pointToPoint?: boolean;
}

export interface KindsLab {
  prefix: string;
  stateDir: string;
  ns: { router: string; lan: string; inet: string; providers: string[] };
  lanHost: string;
  lanIf: string;
  internetHost: string;
  uplinks: KindUplink[];
}

const LAN_NET = '192.168.20.0/24';

function names(prefix: string, count: number): KindsLab['ns'] {
  return { router: `${prefix}r`, lan: `${prefix}l`, inet: `${prefix}i`, providers: Array.from({ length: count }, (_, i) => `${prefix}p${i + 1}`) };
}

async function batch(ns: string, lines: string[]): Promise<void> {
  if (lines.length > 0) await ipIn(ns, ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

async function sysctl(ns: string, values: Record<string, number>): Promise<void> {
  await inNs(ns, 'sysctl', ['-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
}

const rp = (v: number): Record<string, number> => ({ 'net.ipv4.conf.all.rp_filter': v, 'net.ipv4.conf.default.rp_filter': v });

/** Builds the lab (after removing leftovers of a crashed run with the same prefix); tears down on failure. */
export async function kindsLabUp(prefix: string, uplinks: KindUplink[]): Promise<KindsLab> {
  checkPrefix(prefix);
  await kindsLabDown(prefix);
  const ns = names(prefix, uplinks.length);
  const stateDir = `/run/uplinkd-lab/${prefix}`;
  const lab: KindsLab = { prefix, stateDir, ns, lanHost: '192.168.20.10', lanIf: 'lan0', internetHost: INTERNET_HOST, uplinks };
  try {
    await fs.mkdir(stateDir, { recursive: true });
    for (const n of [ns.router, ns.lan, ns.inet, ...ns.providers]) {
      await run('ip', ['netns', 'add', n]);
      await ipIn(n, ['link', 'set', 'lo', 'up']);
    }
    await sysctl(ns.router, { 'net.ipv4.ip_forward': 1, 'net.ipv4.fib_multipath_hash_policy': 1, ...rp(2) });
    await sysctl(ns.inet, { 'net.ipv4.ip_forward': 1, ...rp(0) });
    await ipIn(ns.lan, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', ns.router]);
    await batch(ns.lan, ['link set eth0 up', 'addr add 192.168.20.10/24 dev eth0', 'route add default via 192.168.20.1']);
    await batch(ns.router, ['link set lan0 up', 'addr add 192.168.20.1/24 dev lan0']);
    await batch(ns.inet, [`addr add ${INTERNET_HOST}/32 dev lo`]);
    for (const [i, u] of uplinks.entries()) {
      const p = ns.providers[i]!;
      const n = i + 1;
      await sysctl(p, { 'net.ipv4.ip_forward': 1, ...rp(1) });
      await ipIn(ns.router, ['link', 'add', u.routerIf, 'type', 'veth', 'peer', 'name', 'cust', 'netns', p]);
      if (u.pointToPoint) {
        const mac = `02:00:00:00:0${n}:01`;
        await batch(ns.router, [`link set ${u.routerIf} address ${mac} arp off`]);
        await batch(p, [`link set cust address ${mac} arp off`]);
      }
      await ipIn(p, ['link', 'add', 'bb', 'type', 'veth', 'peer', 'name', `p${n}`, 'netns', ns.inet]);
      await batch(p, ['link set cust up', 'link set bb up', `addr add 100.65.${n}.1/30 dev bb`, `route add default via 100.65.${n}.2`, ...u.provider]);
      await inNs(p, 'nft', ['-f', '-'], { input: `table ip lab_isp {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "cust" ip saddr != ${u.address} counter drop comment "spoofed customer source"
  }
}
` });
      await batch(ns.inet, [`link set p${n} up`, `addr add 100.65.${n}.2/30 dev p${n}`, `route add ${u.address}/32 via 100.65.${n}.1 src ${INTERNET_HOST}`]);
      await batch(ns.router, [`link set ${u.routerIf} up`, ...u.router]);
    }
    await inNs(ns.router, 'nft', ['-f', '-'], { input: `table ip lab_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
${uplinks.map((u) => `    ip saddr ${LAN_NET} oifname "${u.routerIf}" masquerade`).join('\n')}
  }
}
` });
    return lab;
  } catch (e) {
    await kindsLabDown(prefix);
    throw e;
  }
}

/** Removes the lab's processes, namespaces and state dir; safe to run again. */
export async function kindsLabDown(prefix: string): Promise<void> {
  checkPrefix(prefix);
  const ours = (await listNamespaces()).filter((n) => n.startsWith(prefix) && /^[rli]$|^p\d+$/.test(n.slice(prefix.length)));
  await killNamespaceProcesses(ours);
  for (const n of ours) await run('ip', ['netns', 'del', n], { allowFail: true });
  await fs.rm(`/run/uplinkd-lab/${prefix}`, { recursive: true, force: true });
}

/**
 * uplinkd's config for the lab: `uplinks` is the YAML of the list items; every file uplinkd writes
 * stays in the state dir (no host /etc), no lease files are read.
 */
export async function writeKindsConfig(lab: KindsLab, file: string, uplinks: string, extra = ''): Promise<string> {
  const p = path.join(lab.stateDir, file);
  await fs.writeFile(p, `uplinks:
${uplinks.trimEnd()}
lan: [${lab.lanIf}]
multipath_hash: l4
paths:
  rt_tables: ${lab.stateDir}/rt_tables.conf
  rt_protos: ${lab.stateDir}/rt_protos.conf
  control_socket: ${lab.stateDir}/control.sock
  hooks_dir: ${lab.stateDir}/hooks.d
  leases: []
${extra}`);
  return p;
}
