// Replay test (after Tailscale's router tests): random kernel worlds, renumberings, link flaps,
// uplinks appearing and vanishing, gateways moving between the kernel and lease files, health
// changes, replayed in a random order against the fake kernel, and (as root) against the real
// kernel in a throwaway network namespace through NetnsKernelPort. After every step one pass of
// plan + diff + reconcile must leave nothing to do, the kernel must hold exactly the plan, and
// other programs' objects must be untouched. A failure names its seed: REPLAY_SEED=<n> reruns it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Config, PolicyConfig } from '../config/types';
import { FakePort } from '../../test/support/fake-port';
import { NetnsKernelPort } from '../../test/support/netns-port';
import type { KernelPort } from '../kernel/port';
import type { HealthVerdict, Lease } from '../model/facts';
import type { Address, DesiredState, KernelState, Link, Route } from '../model/types';
import { plan } from '../plan/planner';
import { formatChange, formatNexthop, formatRoute, formatRule, parseRoute, parseSnapshot } from '../model/text';
import { testConfig } from '../../test/support/test-config';
import { diff, ownership } from './diff';
import { canonicalNexthop, canonicalRoute, canonicalRule } from '../model/identity';
import { reconcile } from './reconcile';
import { prng } from '../../test/support/prng';

interface World {
  links: Link[];
  addresses: Address[];
  /** Routes other programs (DHCP clients) keep in the kernel in this world. */
  routes: Route[];
  leases: Lease[];
  health: Record<string, HealthVerdict>;
  label: string;
}

// Candidate addresses per DHCP interface; two share a network on purpose.
const DHCP_CHOICES: Record<string, { cidr: string; gateways: string[]; peer?: string; onlink?: boolean }[]> = {
  vlan101: [
    { cidr: '192.0.2.7/24', gateways: ['192.0.2.1', '192.0.2.254'] },
    { cidr: '192.0.2.9/25', gateways: ['192.0.2.1'] },
    { cidr: '203.0.113.70/26', gateways: ['203.0.113.65'] },
  ],
  vlan102: [
    { cidr: '192.0.2.200/24', gateways: ['192.0.2.1'] },
    { cidr: '100.70.3.4/16', gateways: ['100.70.0.1', '100.70.255.254'] },
    // A /32 with an on-link gateway outside it (cloud DHCP).
    { cidr: '198.18.5.5/32', gateways: ['172.31.1.1'], onlink: true },
  ],
  // Two PPP sessions with the same peer; pppd's default is device-only (gateway '').
  ppp0: [{ cidr: '100.64.7.2/32', peer: '10.64.0.1', gateways: ['', '10.64.0.1'] }],
  ppp1: [{ cidr: '100.64.8.2/32', peer: '10.64.0.1', gateways: ['', '10.64.0.1'] }, { cidr: '100.64.9.2/32', peer: '10.64.0.1', gateways: [''] }],
};

const FOREIGN = parseSnapshot(`
rule 10150 from all lookup 77
rule 10100 from 192.0.2.99/32 lookup 1001 protocol static
rule 9000 from all fwmark 0x1 lookup 1001 protocol static
route table 1001 100.64.0.0/10 via 10.0.0.254 dev lan0 proto static
route table 77 default via 10.0.0.254 dev lan0 proto static metric 5
route table 5 default via 10.0.0.254 dev lan0 proto boot
nexthop id 42 via 10.0.0.254 dev lan0 proto static
`);

function makeWorld(rand: () => number, config: Config): World {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const links: Link[] = [{ index: 1, name: 'lo', up: true, lowerUp: true }, { index: 2, name: 'lan0', up: true, lowerUp: true }];
  const addresses: Address[] = [{ dev: 'lan0', address: '10.0.0.1', prefixlen: 24, dynamic: false, secondary: false, scope: 'universe' }];
  const routes: Route[] = [];
  const leases: Lease[] = [];
  const health: Record<string, HealthVerdict> = {};
  const label: string[] = [];
  if (rand() < 0.5) {
    links.push({ index: 3, name: 'lan1', up: true, lowerUp: true });
    addresses.push({ dev: 'lan1', address: '10.1.2.3', prefixlen: 16, dynamic: false, secondary: false, scope: 'universe' });
  }
  config.uplinks.forEach((u, i) => {
    health[u.name] = pick<HealthVerdict>(['up', 'up', 'unknown', 'degraded', 'down']);
    if (rand() < 0.12) {
      label.push(`${u.name}:absent`);
      return;
    }
    const link: Link = { index: 10 + i, name: u.interface, up: rand() < 0.85, lowerUp: rand() < 0.8, kind: u.interface.startsWith('vlan') ? 'vlan' : undefined };
    if (link.kind === undefined) delete link.kind;
    if (u.interface.startsWith('ppp')) link.pointToPoint = true;
    links.push(link);
    const state = `${link.up ? 'up' : 'down'}${link.lowerUp ? '' : '/nocarrier'}`;
    if (!u.dhcp) {
      const has = rand() < 0.85;
      if (has) addresses.push({ dev: u.interface, address: u.address!.ip, prefixlen: u.address!.prefixlen, dynamic: false, secondary: false, scope: 'universe', ...(u.peer && { peer: u.peer }) });
      label.push(`${u.name}:${state}${has ? '' : '/noaddr'}`);
      return;
    }
    const choice = rand() < 0.2 ? undefined : pick(DHCP_CHOICES[u.interface]!);
    if (!choice) {
      label.push(`${u.name}:${state}/waiting`);
      return;
    }
    const [ip, len] = choice.cidr.split('/') as [string, string];
    addresses.push({ dev: u.interface, address: ip, prefixlen: Number(len), dynamic: true, secondary: false, scope: 'universe', ...(choice.peer && { peer: choice.peer }) });
    const gateway = pick(choice.gateways);
    const where = rand();
    // The client's default route: in main with the uplink's metric, in another table, in a multipath route, or none;
    // device-only as pppd makes it, `onlink` where the gateway is outside the prefix.
    const via = gateway === '' ? '' : `via ${gateway} `;
    const onlink = gateway !== '' && (choice.onlink || choice.peer) ? ' onlink' : '';
    if (link.up && where < 0.5) routes.push(parseRoute(`default ${via}dev ${u.interface}${onlink} proto dhcp metric ${100 + i}`));
    else if (link.up && where < 0.65) routes.push(parseRoute(`default ${via}dev ${u.interface}${onlink} table ${60 + i} proto dhcp`));
    else if (link.up && where < 0.75 && gateway !== '' && !onlink) routes.push(parseRoute(`default table ${70 + i} proto static nexthop via ${gateway} dev ${u.interface} weight 1 nexthop via 10.0.0.254 dev lan0 weight 1`));
    if (gateway !== '' && rand() < 0.6) {
      leases.push({ interface: u.interface, client: 'dhclient', file: `/var/lib/dhcp/${u.interface}.leases`, address: rand() < 0.8 ? ip : '198.18.0.1', gateway });
    }
    label.push(`${u.name}:${state}/${choice.cidr}${where < 0.75 && link.up ? ` via ${gateway}` : ''}`);
  });
  return { links, addresses, routes, leases, health, label: label.join(' ') };
}

function ownedOf(config: Config, s: KernelState): DesiredState {
  const owns = ownership(config);
  return { routes: s.routes.filter(owns.route), rules: s.rules.filter(owns.rule), nexthops: s.nexthops.filter(owns.nexthop) };
}

/** Sorted canonical text of a desired or owned state, for exact comparison with readable failures. */
function canonicalText(s: DesiredState): string[] {
  return [
    ...s.routes.map((r) => `route ${formatRoute(canonicalRoute(r))}`),
    ...s.rules.map((r) => `rule ${formatRule(canonicalRule(r))}`),
    ...s.nexthops.map((n) => `nexthop ${formatNexthop(canonicalNexthop(n))}`),
  ].sort();
}

/** Where a replay runs: a kernel whose interfaces the world sets, read back whole (current). */
interface Kernel {
  port: KernelPort;
  /** Links and addresses become exactly these (the kernel flushes what goes with them). */
  setInterfaces(links: Link[], addresses: Address[]): Promise<void>;
  current(): Promise<KernelState>;
}

function fakeKernel(world: World, foreignState: KernelState = FOREIGN): Kernel {
  const port = new FakePort({ ...foreignState, links: world.links, addresses: world.addresses });
  return { port, setInterfaces: async (l, a) => port.setInterfaces(l, a), current: async () => port.current() };
}

const ip = (ns: string, args: string[], input?: string): string =>
  execFileSync('ip', ['-n', ns, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

/**
 * The real kernel in namespace `ns`: every interface is a veth whose peer (`<name>p`) gives it
 * carrier when up; an absent interface is deleted; a dynamic address has a finite lifetime, as a
 * DHCP client's does. One `ip -batch` per step.
 */
async function realKernel(ns: string, port: NetnsKernelPort): Promise<Kernel> {
  const present = new Set<string>(['lo']);
  /** Addresses in place, as `dev address/len dynamic`: only what differs is changed, as a DHCP client would. */
  let inPlace = new Set<string>();
  const addrKey = (a: Address) => `${a.dev} ${a.address}/${a.prefixlen} ${a.peer ?? '-'} ${a.dynamic}`;
  const setInterfaces = async (links: Link[], addresses: Address[]): Promise<void> => {
    const cmds: string[] = [];
    const want = new Set(links.map((l) => l.name));
    for (const name of [...present]) {
      if (name !== 'lo' && !want.has(name)) {
        cmds.push(`link del ${name}`);
        present.delete(name);
        inPlace = new Set([...inPlace].filter((k) => !k.startsWith(`${name} `)));
      }
    }
    for (const l of links) {
      if (l.name === 'lo') continue;
      if (!present.has(l.name)) {
        cmds.push(`link add ${l.name} type veth peer name ${l.name}p`);
        present.add(l.name);
      }
      cmds.push(`link set ${l.name}p ${l.lowerUp ? 'up' : 'down'}`, `link set ${l.name} ${l.up ? 'up' : 'down'}`);
    }
    const next = new Set(addresses.map(addrKey));
    for (const key of inPlace) {
      const [dev, cidr, peer] = key.split(' ');
      const [address, len] = cidr!.split('/');
      if (!next.has(key)) cmds.push(`addr del ${address}${peer !== '-' ? ` peer ${peer}` : ''}/${len} dev ${dev}`);
    }
    for (const a of addresses) {
      if (!inPlace.has(addrKey(a))) cmds.push(`addr add ${a.address}${a.peer !== undefined ? ` peer ${a.peer}` : ''}/${a.prefixlen} dev ${a.dev}${a.dynamic ? ' valid_lft 86400 preferred_lft 86400' : ''}`);
    }
    inPlace = next;
    ip(ns, ['-batch', '-'], `${cmds.join('\n')}\n`);
  };
  const current = async (): Promise<KernelState> => {
    const s = await port.snapshot();
    // As stored (FakePort.current): a route through a nexthop object carries only its nhid.
    for (const r of s.routes) {
      if (r.nhid !== undefined) {
        delete r.gateway;
        delete r.dev;
        delete r.multipath;
      }
      delete r.linkdown;
    }
    return s;
  };
  return { port, setInterfaces, current };
}

async function replay(
  seed: number, config: Config, steps: number,
  kernelFor: (first: World) => Promise<Kernel> = async (w) => fakeKernel(w), foreignState: KernelState = FOREIGN,
): Promise<void> {
  const rand = prng(seed);
  const worlds = Array.from({ length: 24 }, () => makeWorld(rand, config));
  const k = await kernelFor(worlds[0]!);
  const port = k.port;
  const foreign = canonicalText(foreignState);
  let worldRoutes: Route[] = [];
  for (let step = 0; step < steps; step++) {
    const world = worlds[Math.floor(rand() * worlds.length)]!;
    const where = `seed ${seed} (REPLAY_SEED=${seed}), ${config.default}, step ${step}: ${world.label}`;

    // The world moves: interfaces (with the kernel's flushes), then the DHCP clients' routes.
    await k.setInterfaces(world.links, world.addresses);
    for (const r of worldRoutes) await port.apply({ op: 'del', kind: 'route', route: r });
    for (const r of world.routes) await port.apply({ op: 'add', kind: 'route', route: r });
    worldRoutes = world.routes;

    const kernel = await port.snapshot();
    const facts = { kernel, leases: world.leases, health: world.health };
    const p = plan(config, facts);
    checkPolicies(config, p, where);
    const changes = diff(p.desired, kernel, config);
    const { failed } = await reconcile(port, changes);
    assert.deepEqual(failed.map((f) => `${formatChange(f.change)}: ${f.error.message}`), [], where);

    const after = await port.snapshot();
    assert.deepEqual(diff(p.desired, after, config).map(formatChange), [], `${where}: not converged after one pass`);
    assert.deepEqual(canonicalText(ownedOf(config, await k.current())), canonicalText(p.desired), `${where}: kernel differs from the plan`);
    // uplinkd's own objects do not change its mind.
    assert.deepEqual(plan(config, { ...facts, kernel: after }), p, `${where}: plan changed after applying it`);
    const now = await k.current();
    const stillThere = canonicalText({
      routes: now.routes.filter((r) => r.protocol !== 117 || r.table === 5),
      rules: now.rules.filter((r) => r.protocol !== 117 || r.priority < 10000),
      nexthops: now.nexthops.filter((n) => n.protocol !== 117),
    });
    for (const line of foreign) assert.ok(stillThere.includes(line), `${where}: foreign object lost: ${line}`);
  }
}

const seeds = process.env.REPLAY_SEED ? [Number(process.env.REPLAY_SEED)] : Array.from({ length: 10 }, (_, i) => 1000 + i * 7919);

const replayConfig = (mode: 'balance' | 'failover'): Config => testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', tier: 1 },
  { name: 'isp2', interface: 'vlan101', weight: 2, tier: 1, onDegraded: 'reduce' },
  { name: 'isp3', interface: 'vlan102', tier: 2, onDegraded: 'remove' },
  // Issue 8: a second uplink in isp1's subnet with the same gateway, a static /32 with an
  // on-link gateway, a static point-to-point link and two learned ones sharing a peer.
  { name: 'home2', interface: 'if2', address: '198.51.100.3/24', gateway: '198.51.100.1', tier: 1 },
  { name: 'cloud', interface: 'ens5', address: '203.0.113.2/32', gateway: '172.31.1.1', tier: 1 },
  { name: 'tun', interface: 'tun0', address: '100.64.1.2/32', peer: '10.64.0.1', tier: 2 },
  { name: 'flets1', interface: 'ppp0', tier: 1 },
  { name: 'flets2', interface: 'ppp1', tier: 1 },
], { lan: ['lan0', 'lan1'], default: mode });

for (const mode of ['balance', 'failover'] as const) {
  test(`replay of random kernel worlds converges in one pass (${mode})`, async () => {
    for (const seed of seeds) await replay(seed, replayConfig(mode), 60);
  });
}

const REAL_NS = `up1${process.pid % 1000}-replay`;

for (const mode of ['balance', 'failover'] as const) {
  test(`replay against the real kernel in a namespace (${mode})`, { skip: process.getuid?.() === 0 ? false : 'needs root' }, async () => {
    const drop = () => { try { execFileSync('ip', ['netns', 'del', REAL_NS], { stdio: 'ignore' }); } catch { /* not there */ } };
    // Fewer seeds and steps than the fake: each step is real `ip` work on a shared machine.
    for (const seed of process.env.REPLAY_SEED ? seeds : seeds.slice(0, 2)) {
      drop();
      let port: NetnsKernelPort | undefined;
      try {
        execFileSync('ip', ['netns', 'add', REAL_NS]);
        ip(REAL_NS, ['link', 'set', 'lo', 'up']);
        const opened = port = await NetnsKernelPort.open(REAL_NS);
        await replay(seed, replayConfig(mode), 25, async (first) => {
          const k = await realKernel(REAL_NS, opened);
          await k.setInterfaces(first.links, first.addresses);
          // Other programs' objects, exactly as the fake kernel starts with them (lan0 carries them).
          for (const change of [...FOREIGN.nexthops.map((nexthop) => ({ op: 'add' as const, kind: 'nexthop' as const, nexthop })),
            ...FOREIGN.rules.map((rule) => ({ op: 'add' as const, kind: 'rule' as const, rule })),
            ...FOREIGN.routes.map((route) => ({ op: 'add' as const, kind: 'route' as const, route }))]) await opened.apply(change);
          return k;
        });
      } finally {
        port?.close();
        drop();
      }
    }
  });
}

/** Each policy uses the first usable uplink of its `use` list; a strict one is never without its unreachable rule. */
function checkPolicies(config: Config, p: ReturnType<typeof plan>, where: string): void {
  (config.policies ?? []).forEach((policy, i) => {
    const st = p.policies[i]!;
    // Usable: ready, or kept as the last resort when health judges every uplink down (issue 10).
    const usable = (n: string): boolean => { const u = p.uplinks.find((x) => x.name === n); return u?.state === 'ready' || u?.lastResort === true; };
    const first = policy.use.find(usable);
    assert.equal(st.uplink, first, `${where}: policy ${policy.name}`);
    const tables = new Set(st.rules.filter((r) => r.action === 'lookup').map((r) => r.table));
    assert.deepEqual([...tables], first ? [config.uplinks.find((u) => u.name === first)!.table] : [], `${where}: policy ${policy.name} tables`);
    if (policy.strict) assert.ok(st.rules.some((r) => r.action === 'unreachable'), `${where}: strict policy ${policy.name} lost its guard`);
  });
}

// Foreign rules that differ from the policies' rules only in selectors uplinkd added for policies.
const FOREIGN_WITH_POLICY_LOOKALIKES = parseSnapshot(`${[
  'rule 10150 from all lookup 77',
  'rule 10210 from 10.0.0.0/24 ipproto tcp lookup 1002 protocol static',
  'rule 10213 from 10.0.0.20/32 ipproto udp dport 5060 lookup 1001 protocol static',
  'rule 10214 from 10.0.0.20/32 ipproto udp dport 5060-5080 tos 0x10 unreachable protocol static',
].map((l) => `${l}\n`).join('')}`);

test('replay with policies: each follows its first usable uplink, strict ones keep their guard, lookalike foreign rules stay', async () => {
  const config = testConfig([
    { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', tier: 1 },
    { name: 'isp2', interface: 'vlan101', weight: 2, tier: 1, onDegraded: 'reduce' },
    { name: 'isp3', interface: 'vlan102', tier: 2, onDegraded: 'remove' },
  ], { lan: ['lan0', 'lan1'] });
  const policy = (p: Partial<PolicyConfig> & Pick<PolicyConfig, 'name' | 'use'>): PolicyConfig =>
    ({ at: 'test.yaml:1:1', from: [], to: [], dport: [], sport: [], strict: false, ...p });
  config.policies = [
    policy({ name: 'office', from: ['10.0.0.0/24'], use: ['isp2', 'isp1'] }),
    policy({ name: 'voip', from: ['10.0.0.20/32'], ipProto: 17, dport: [{ start: 5060, end: 5080 }], use: ['isp1'], strict: true }),
    policy({ name: 'bank', to: ['192.0.2.0/24', '203.0.113.0/24'], use: ['isp3', 'isp2', 'isp1'] }),
    policy({ name: 'ssh', iif: 'lan1', ipProto: 6, dport: [{ start: 22, end: 22 }], sport: [{ start: 1024, end: 65534 }], dscp: 8, use: ['isp2', 'isp3'], strict: true }),
  ];
  for (const seed of seeds) await replay(seed, config, 60, async (w) => fakeKernel(w, FOREIGN_WITH_POLICY_LOOKALIKES), FOREIGN_WITH_POLICY_LOOKALIKES);
});
