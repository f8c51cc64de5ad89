// Builds and tears down the lab in network namespaces (see docs/design.md, test/lab):
//
//   lan host --- router --if1--- isp1 ---+
//   (eth0)      (if0)  --if2--- isp2 ---+--- inet host (192.0.2.80 on lo)
//
// With `vlan`, the router has one trunk NIC eth0 carrying vlan101/vlan102 to a `switch`
// namespace that bridges each VLAN to its provider. Providers filter sources strictly
// on the customer side and do not NAT; the router masquerades the LAN out of each uplink.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { renderLabConfig } from './config';
import { leaseFile, leaseGlob, startDhcpClient, startDhcpServer } from './dhcp';
import { inNs, ipIn, LAB_RUNTIME_DIR, run, sleep, type RunResult } from './exec';
import { installRules, labFirewall, type LabRule } from './firewall';
import {
  checkPrefix,
  DEFAULT_PREFIX,
  DEFAULT_STATE_ROOT,
  INTERNET_HOST,
  LAN,
  nsName,
  PROVIDER_BACKBONE_IF,
  PROVIDER_CUSTOMER_IF,
  PROVIDERS,
  ROLES,
  stateDirOf,
  TRUNK_IF,
  type LabInfo,
  type LabOptions,
  type LabUplink,
  type Provider,
  type Role,
} from './topology';

const LAB_JSON = 'lab.json';

/** Builds the lab; on any failure tears down what was built and rethrows. */
export async function labUp(opts: LabOptions = {}): Promise<LabInfo> {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  checkPrefix(prefix);
  const stateRoot = opts.stateRoot ?? DEFAULT_STATE_ROOT;
  const vlan = opts.vlan ?? false;
  if (vlan) await requireVlanDriver(prefix);
  const roles: Role[] = ROLES.filter((r) => r !== 'switch' || vlan);
  const existing = (await listNamespaces()).filter((n) => ROLES.some((r) => n === nsName(prefix, r)));
  if (existing.length > 0)
    throw new UplinkdError('lab', `lab '${prefix}' is already up (namespaces ${existing.join(', ')}); run 'uplinkd lab down --prefix ${prefix}' first`);

  const stateDir = stateDirOf(prefix, stateRoot);
  try {
    await fs.mkdir(stateDir, { recursive: true });
    return await build(prefix, stateDir, roles, { ...opts, vlan });
  } catch (err) {
    await labDown(prefix, stateRoot).catch(() => undefined);
    throw err instanceof UplinkdError ? err : new UplinkdError('lab', `lab up failed: ${(err as Error).message}`, { cause: err });
  }
}

async function build(prefix: string, stateDir: string, roles: Role[], opts: LabOptions & { vlan: boolean }): Promise<LabInfo> {
  const ns = (r: Role) => nsName(prefix, r);
  const dhcpClient = opts.dhcpClient ?? 'dhclient';
  const modes = { isp1: opts.isp1 ?? 'static', isp2: opts.isp2 ?? 'dhcp' };

  for (const r of roles) {
    await run('ip', ['netns', 'add', ns(r)]);
    await prepareEtc(ns(r));
    await ipIn(ns(r), ['link', 'set', 'dev', 'lo', 'up']);
  }
  // Sysctls before the links exist, so `default` applies to every new interface.
  // Router: loose reverse-path check (asymmetric by design); providers: strict, like an ISP.
  await sysctl(ns('router'), { 'net.ipv4.ip_forward': 1, 'net.ipv4.fib_multipath_hash_policy': 1, ...rpFilter(2) });
  for (const p of PROVIDERS) await sysctl(ns(p.name), { 'net.ipv4.ip_forward': 1, ...rpFilter(1) });
  await sysctl(ns('inet'), { 'net.ipv4.ip_forward': 1, ...rpFilter(0) });
  await sysctl(ns('lan'), rpFilter(0));
  if (opts.vlan) await sysctl(ns('switch'), rpFilter(0));
  const firewall = await labFirewall(ns('router'));

  await veth(ns('lan'), LAN.hostIf, ns('router'), LAN.routerIf);
  const uplinkIf = (p: Provider) => (opts.vlan ? p.routerVlanIf : p.routerIf);
  if (opts.vlan) {
    await veth(ns('router'), TRUNK_IF, ns('switch'), 'trunk');
    for (const p of PROVIDERS) {
      const port = `p${p.vlanId}`;
      const br = `br${p.vlanId}`;
      await ipIn(ns('router'), ['link', 'add', 'link', TRUNK_IF, 'name', p.routerVlanIf, 'type', 'vlan', 'id', String(p.vlanId)]);
      await ipIn(ns('router'), ['link', 'set', 'dev', p.routerVlanIf, 'up']);
      await veth(ns('switch'), port, ns(p.name), PROVIDER_CUSTOMER_IF);
      await batch(ns('switch'), [
        `link add link trunk name trunk.${p.vlanId} type vlan id ${p.vlanId}`,
        `link add name ${br} type bridge`,
        `link set trunk.${p.vlanId} master ${br}`,
        `link set ${port} master ${br}`,
        `link set trunk.${p.vlanId} up`,
        `link set ${br} up`,
      ]);
    }
  } else {
    for (const p of PROVIDERS) await veth(ns('router'), p.routerIf, ns(p.name), PROVIDER_CUSTOMER_IF);
  }
  for (const p of PROVIDERS) await veth(ns(p.name), PROVIDER_BACKBONE_IF, ns('inet'), p.name);

  await batch(ns('lan'), [
    `addr add ${LAN.hostAddress}/${LAN.prefixlen} dev ${LAN.hostIf}`,
    `route add default via ${LAN.routerAddress}`,
  ]);
  await batch(ns('router'), [`addr add ${LAN.routerAddress}/${LAN.prefixlen} dev ${LAN.routerIf}`]);
  for (const p of PROVIDERS) {
    const b = p.backbone;
    await batch(ns(p.name), [
      `addr add ${p.gateway}/${p.prefixlen} dev ${PROVIDER_CUSTOMER_IF}`,
      `addr add ${b.provider}/${b.prefixlen} dev ${PROVIDER_BACKBONE_IF}`,
      `route add default via ${b.inet}`,
    ]);
    await installRules(ns(p.name), firewall, [providerFilter(p)]);
  }
  // The internet host answers from its service address and reaches each customer net via its provider.
  await batch(ns('inet'), [
    `addr add ${INTERNET_HOST}/32 dev lo`,
    ...PROVIDERS.flatMap((p) => [
      `addr add ${p.backbone.inet}/${p.backbone.prefixlen} dev ${p.name}`,
      `route add ${p.customerNet} via ${p.backbone.provider} src ${INTERNET_HOST}`,
    ]),
  ]);
  await installRules(ns('router'), firewall, [routerNat(PROVIDERS.map(uplinkIf))]);

  for (const p of PROVIDERS) {
    const extra = opts.classlessRoute?.provider === p.name ? opts.classlessRoute : undefined;
    const via = extra && p.gateway.replace(/\.\d+$/, `.${extra.viaHost}`);
    // The second router is the provider's namespace again, under another address on the customer link.
    if (via) await ipIn(ns(p.name), ['addr', 'add', `${via}/${p.prefixlen}`, 'dev', PROVIDER_CUSTOMER_IF]);
    await startDhcpServer(ns(p.name), p, stateDir, 3600, { gateway: opts.dhcpGateway ?? 'router', ...(extra && { classless: [`${extra.dst},${via}`] }) });
  }

  const uplinks: LabUplink[] = [];
  for (const [i, p] of PROVIDERS.entries()) {
    const ifname = uplinkIf(p);
    const mode = modes[p.name];
    let address: string = p.staticAddress;
    if (mode === 'static') {
      // As an admin would: the address, and a default route in main (metric per uplink).
      await batch(ns('router'), [
        `addr add ${p.staticAddress}/${p.prefixlen} dev ${ifname}`,
        `route add default via ${p.gateway} dev ${ifname} metric ${100 + i}`,
      ]);
    } else {
      address = await startDhcpClient(ns('router'), dhcpClient, ifname, stateDir);
    }
    uplinks.push({
      name: p.name,
      interface: ifname,
      mode,
      address,
      prefixlen: p.prefixlen,
      network: p.customerNet,
      gateway: p.gateway,
      providerNs: ns(p.name),
      ...(mode === 'dhcp' ? { leaseFile: await leaseFile(ns('router'), dhcpClient, stateDir, ifname) } : {}),
    });
  }

  const info: LabInfo = {
    prefix,
    vlan: opts.vlan,
    firewall,
    dhcpClient,
    stateDir,
    configPath: path.join(stateDir, 'uplinkd.yaml'),
    leaseGlobs: [leaseGlob(dhcpClient, stateDir)],
    ns: {
      lan: ns('lan'),
      router: ns('router'),
      isp1: ns('isp1'),
      isp2: ns('isp2'),
      inet: ns('inet'),
      ...(opts.vlan ? { switch: ns('switch') } : {}),
    },
    lan: { interface: LAN.routerIf, network: LAN.network, routerAddress: LAN.routerAddress, hostAddress: LAN.hostAddress },
    uplinks,
    internetHost: INTERNET_HOST,
  };
  await fs.writeFile(info.configPath, renderLabConfig(info));
  await fs.writeFile(path.join(stateDir, LAB_JSON), JSON.stringify(info, null, 2) + '\n');
  return info;
}

/** The info of a lab that is up (from its state dir), or undefined. */
export async function readLabInfo(prefix = DEFAULT_PREFIX, stateRoot = DEFAULT_STATE_ROOT): Promise<LabInfo | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(stateDirOf(prefix, stateRoot), LAB_JSON), 'utf8')) as LabInfo;
  } catch {
    return undefined;
  }
}

export interface LabDownReport {
  namespaces: string[];
  killed: number[];
}

/**
 * Removes everything of lab `prefix`: processes in its namespaces (by pid), the namespaces,
 * /etc/netns/<ns> and the state dir. Safe to run any number of times, also after a crash half-way.
 */
export async function labDown(prefix = DEFAULT_PREFIX, stateRoot = DEFAULT_STATE_ROOT): Promise<LabDownReport> {
  checkPrefix(prefix);
  const names = [...ROLES.map((r) => nsName(prefix, r)), vlanProbeNs(prefix)];
  const present = (await listNamespaces()).filter((n) => names.includes(n));
  const killed = await killNamespaceProcesses(present);
  for (const n of present) await run('ip', ['netns', 'del', n], { allowFail: true });
  for (const n of names) await fs.rm(path.join('/etc/netns', n), { recursive: true, force: true });
  await fs.rm(stateDirOf(prefix, stateRoot), { recursive: true, force: true });
  await removeSocketRecordsUnder(stateDirOf(prefix, stateRoot));
  const left = (await listNamespaces()).filter((n) => names.includes(n));
  if (left.length > 0) throw new UplinkdError('lab', `could not delete namespaces ${left.join(', ')}`);
  return { namespaces: present, killed };
}

/**
 * Socket records (src/daemon/socket-record.ts) of configuration files under `dir` in LAB_RUNTIME_DIR: a lab
 * daemon killed with SIGKILL leaves its record, which would name a socket that is gone.
 */
async function removeSocketRecordsUnder(dir: string): Promise<void> {
  const records = path.join(LAB_RUNTIME_DIR, 'config');
  const names = await fs.readdir(records).catch(() => [] as string[]);
  for (const name of names) {
    let file: string;
    try {
      file = decodeURIComponent(name.replace(/\.json$/, ''));
    } catch {
      continue; // not a record's name
    }
    if (file.startsWith(`${dir}/`)) await fs.rm(path.join(records, name), { force: true });
  }
}

/** Every process inside the namespaces was started by the lab (or a benchmark): TERM them, then KILL what is left. */
export async function killNamespaceProcesses(namespaces: readonly string[]): Promise<number[]> {
  const pidsNow = async () => {
    const all: number[] = [];
    for (const n of namespaces) {
      const r = await run('ip', ['netns', 'pids', n], { allowFail: true });
      all.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
    }
    return all.filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
  };
  const pids = await pidsNow();
  signal(pids, 'SIGTERM');
  for (let i = 0; i < 30 && (await pidsNow()).length > 0; i++) await sleep(100);
  signal(await pidsNow(), 'SIGKILL');
  for (let i = 0; i < 20 && (await pidsNow()).length > 0; i++) await sleep(100);
  return pids;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** The names of the host's network namespaces (`ip netns list`), for finding a lab's leftovers by prefix. */
export async function listNamespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  return r.stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
}

function vlanProbeNs(prefix: string): string {
  return `${prefix}vlanprobe`;
}

/** Throws a clear error unless the kernel can create 802.1Q VLAN links (tried in a throwaway namespace). */
export async function requireVlanDriver(prefix = DEFAULT_PREFIX): Promise<void> {
  const missing = await vlanDriverMissing(prefix);
  if (missing) throw new UplinkdError('lab', missing);
}

/** Why VLAN labs cannot run here (the message names the 8021q driver), or undefined when they can. */
export async function vlanDriverMissing(prefix = DEFAULT_PREFIX): Promise<string | undefined> {
  const probe = vlanProbeNs(prefix);
  await run('ip', ['netns', 'del', probe], { allowFail: true });
  await run('ip', ['netns', 'add', probe]);
  try {
    await ipIn(probe, ['link', 'add', 'name', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
    const r = await ipIn(probe, ['link', 'add', 'link', 'probe0', 'name', 'probe0.101', 'type', 'vlan', 'id', '101'], { allowFail: true });
    if (r.code === 0) return undefined;
    return `the kernel has no 802.1Q VLAN driver (8021q): 'ip link add ... type vlan' failed: ${r.stderr.trim()}`;
  } finally {
    await run('ip', ['netns', 'del', probe], { allowFail: true });
  }
}

/**
 * `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc: a resolv.conf and an iproute2 dir
 * (with the host's base name files copied, and empty rt_tables.d/rt_protos.d) so that DHCP
 * clients and uplinkd's table/protocol names stay inside the lab.
 */
async function prepareEtc(ns: string): Promise<void> {
  const dir = path.join('/etc/netns', ns);
  const ipr = path.join(dir, 'iproute2');
  await fs.mkdir(path.join(ipr, 'rt_tables.d'), { recursive: true });
  await fs.mkdir(path.join(ipr, 'rt_protos.d'), { recursive: true });
  await fs.writeFile(path.join(dir, 'resolv.conf'), `# resolv.conf of lab namespace ${ns}\n`);
  for (const name of ['rt_tables', 'rt_protos', 'rt_scopes', 'rt_realms', 'rt_dsfield']) {
    await fs.copyFile(path.join('/etc/iproute2', name), path.join(ipr, name)).catch(() => undefined);
  }
}

function rpFilter(v: 0 | 1 | 2): Record<string, number> {
  return { 'net.ipv4.conf.all.rp_filter': v, 'net.ipv4.conf.default.rp_filter': v };
}

async function sysctl(ns: string, values: Record<string, number>): Promise<RunResult> {
  return inNs(ns, 'sysctl', ['-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
}

async function veth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  await ipIn(nsA, ['link', 'add', 'name', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  await ipIn(nsA, ['link', 'set', 'dev', ifA, 'up']);
  await ipIn(nsB, ['link', 'set', 'dev', ifB, 'up']);
}

/** Several iproute2 commands in one `ip -batch` run. */
async function batch(ns: string, commands: string[]): Promise<void> {
  await ipIn(ns, ['-batch', '-'], { input: commands.join('\n') + '\n' });
}

/** An ISP drops customer packets whose source is not the customer's network (BCP 38); it does not NAT. */
export function providerFilter(p: Provider): LabRule {
  return { kind: 'source-filter', iif: PROVIDER_CUSTOMER_IF, allowed: p.customerNet, comment: 'spoofed customer source' };
}

/** The admin's NAT on the router: the LAN leaves through each uplink masqueraded. */
export function routerNat(uplinkIfs: string[]): LabRule {
  return { kind: 'masquerade', from: LAN.network, oifs: uplinkIfs };
}
