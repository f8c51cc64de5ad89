// Root integration test: drives NetlinkKernelPort inside throwaway namespaces (through
// NetnsKernelPort, since a netlink socket lives in its opener's namespace) and compares what it
// reads and writes with `ip -j` of the same namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { UplinkdError } from '../errors';
import type { Change, KernelState, Nexthop, Route, Rule } from '../model/types';
import { routeOfInterest, type KernelEvent } from './port';
import { NetnsKernelPort } from '../../test/support/netns-port';

const NS = `ulnl-${process.pid}-a`;
const PEER = `ulnl-${process.pid}-b`;
const P = 117;

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ipj = <T = Record<string, unknown>[]>(...args: string[]): T => JSON.parse(ip('-n', NS, '-j', ...args) || '[]') as T;

function hasIp(): boolean {
  try {
    ip('-V');
    return true;
  } catch {
    return false;
  }
}

function setup(): void {
  ip('netns', 'add', NS);
  ip('netns', 'add', PEER);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', PEER);
  ip('-n', NS, 'link', 'add', 'va2', 'type', 'veth', 'peer', 'name', 'vb2', 'netns', PEER);
  for (const [ns, dev, addr] of [[NS, 'va', '10.91.0.1/24'], [NS, 'va2', '10.92.0.1/24'], [PEER, 'vb', '10.91.0.2/24'], [PEER, 'vb2', '10.92.0.2/24']]) {
    ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
}

function cleanup(): void {
  for (const ns of [NS, PEER]) {
    try {
      ip('netns', 'del', ns);
    } catch { /* not created */ }
  }
}

const TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };
const PROTOS: Record<string, number> = { redirect: 1, kernel: 2, boot: 3, static: 4 };
const num = (v: unknown, names: Record<string, number>): number => (typeof v === 'string' && v in names ? names[v] : Number(v));
const cidr = (dst: string): string => (dst === 'default' ? '0.0.0.0/0' : dst.includes('/') ? dst : `${dst}/32`);

/** `ip -4 -j route show table all`, as comparable strings. */
function ipRoutes(): string[] {
  return ipj('-4', 'route', 'show', 'table', 'all').map((r) => {
    const hops = (r.nexthops as { gateway?: string; dev: string; weight: number }[] | undefined) ?? [];
    const via = r.nhid !== undefined ? `nhid ${r.nhid}`
      : hops.length ? hops.map((h) => `${h.gateway ?? ''}@${h.dev}*${h.weight}`).join(',')
        : `${r.gateway ?? ''}@${r.dev ?? ''}`;
    return [num(r.table ?? 'main', TABLES), cidr(r.dst as string), r.type ?? 'unicast', num(r.protocol ?? 0, PROTOS),
      via, r.prefsrc ?? '', r.metric ?? 0].join(' ');
  }).sort();
}

function portRoutes(s: KernelState): string[] {
  return s.routes.map((r) => {
    const via = r.nhid !== undefined ? `nhid ${r.nhid}`
      : r.multipath ? r.multipath.map((h) => `${h.gateway ?? ''}@${h.dev}*${h.weight}`).join(',')
        : `${r.gateway ?? ''}@${r.dev ?? ''}`;
    return [r.table, r.dst, r.type, r.protocol, via, r.src ?? '', r.metric ?? 0].join(' ');
  }).sort();
}

function ipRules(): string[] {
  return ipj('rule', 'show').map((r) => [r.priority, r.src === 'all' ? '' : cidr(`${r.src}/${r.srclen ?? 32}`),
    num(r.table, TABLES), r.oif ?? '', r.suppress_prefixlen ?? ''].join(' ')).sort();
}

function portRules(s: KernelState): string[] {
  return s.rules.map((r) => [r.priority, r.src ?? '', r.table, r.oif ?? '', r.suppressPrefixlen ?? ''].join(' ')).sort();
}

function ipNexthops(): Nexthop[] {
  return ipj('nexthop', 'show').map((n) => {
    const nh: Nexthop = { id: n.id as number, protocol: num(n.protocol, PROTOS) };
    if (n.gateway) nh.gateway = n.gateway as string;
    if (n.dev) nh.dev = n.dev as string;
    if (n.group) nh.group = (n.group as { id: number; weight?: number }[]).map((g) => ({ id: g.id, weight: g.weight ?? 1 }));
    const res = n.resilient_args as { buckets: number; idle_timer: number; unbalanced_timer: number } | undefined;
    if (res) nh.resilient = { buckets: res.buckets, idleTimer: res.idle_timer, unbalancedTimer: res.unbalanced_timer };
    return nh;
  });
}

const byId = (a: Nexthop[]): Nexthop[] => [...a].sort((x, y) => x.id - y.id);

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs reconcile() over a NetlinkKernelPort of its own inside NS, in one process (NetnsKernelPort's
 * child answers one call at a time, so it would not pipeline). `before` runs (as `ip` commands) after
 * the port has read its interface map, so interfaces it creates are unknown to the port.
 */
function reconcileInNs(changes: Change[], before: string[][]): { failed: { index: number; errno?: string }[]; applied: number } {
  const script = `
    const { execFileSync } = require('node:child_process');
    const { NetlinkKernelPort } = require(${JSON.stringify(join(__dirname, 'netlink-port.js'))});
    const { reconcile } = require(${JSON.stringify(join(__dirname, '..', 'reconcile', 'reconcile.js'))});
    (async () => {
      const changes = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
      const port = await NetlinkKernelPort.open();
      for (const args of ${JSON.stringify(before)}) execFileSync('ip', args);
      const r = await reconcile(port, changes);
      port.close();
      process.stdout.write(JSON.stringify({ applied: r.applied.length,
        failed: r.failed.map((f) => ({ index: changes.indexOf(f.change), errno: f.error.detail.errno })) }));
    })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  return JSON.parse(execFileSync('ip', ['netns', 'exec', NS, process.execPath, '-e', script],
    { input: JSON.stringify(changes), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })) as ReturnType<typeof reconcileInNs>;
}

const route = (r: Partial<Route> & Pick<Route, 'table' | 'dst'>): Route => ({ type: 'unicast', protocol: P, scope: 'universe', ...r });
const rule = (r: Partial<Rule> & Pick<Rule, 'priority' | 'table'>): Rule => ({ action: 'lookup', protocol: P, ...r });

test('NetlinkKernelPort in a network namespace', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  if (!hasIp()) return t.skip('needs iproute2');
  cleanup();
  let port: NetnsKernelPort | undefined;
  try {
    setup();
    port = await NetnsKernelPort.open(NS);
    const p = port;
    const apply = (c: Change) => p.apply(c);

    await t.test('snapshot: links and addresses match ip -j', async () => {
      const s = await p.snapshot();
      const links = ipj<{ ifindex: number; ifname: string; flags: string[] }[]>('link', 'show');
      assert.deepEqual(s.links.map((l) => [l.index, l.name, l.up, l.lowerUp]).sort(),
        links.map((l) => [l.ifindex, l.ifname, l.flags.includes('UP'), l.flags.includes('LOWER_UP')]).sort());
      assert.equal(s.links.find((l) => l.name === 'va')?.kind, 'veth');
      const addrs = ipj<{ ifname: string; addr_info: { local: string; prefixlen: number }[] }[]>('-4', 'addr', 'show')
        .flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen} ${l.ifname}`)).sort();
      assert.deepEqual(s.addresses.map((a) => `${a.address}/${a.prefixlen} ${a.dev}`).sort(), addrs);
      assert.equal(s.addresses.find((a) => a.dev === 'va')?.dynamic, false);
      assert.ok(s.routes.some((r) => r.table === 255 && r.type === 'local'), 'local table routes are returned');
    });

    await t.test('routes: table 1001 with src/gateway, multipath with weights', async () => {
      await apply({ op: 'add', kind: 'route', route: route({ table: 1001, dst: '10.91.0.0/24', scope: 'link', dev: 'va', src: '10.91.0.1' }) });
      await apply({ op: 'add', kind: 'route', route: route({ table: 1001, dst: '0.0.0.0/0', gateway: '10.91.0.2', dev: 'va' }) });
      const mp = route({ table: 1002, dst: '0.0.0.0/0', multipath: [
        { gateway: '10.91.0.2', dev: 'va', weight: 3 }, { gateway: '10.92.0.2', dev: 'va2', weight: 1 }] });
      await apply({ op: 'add', kind: 'route', route: mp });
      const shown = ipj<{ dst: string; gateway?: string; prefsrc?: string; protocol: string }[]>('route', 'show', 'table', '1001');
      assert.deepEqual(shown.map((r) => [r.dst, r.gateway, r.prefsrc, r.protocol]),
        [['default', '10.91.0.2', undefined, '117'], ['10.91.0.0/24', undefined, '10.91.0.1', '117']]);
      const mpShown = ipj<{ nexthops: { gateway: string; dev: string; weight: number }[] }[]>('route', 'show', 'table', '1002');
      assert.deepEqual(mpShown[0].nexthops.map((h) => [h.gateway, h.dev, h.weight]), [['10.91.0.2', 'va', 3], ['10.92.0.2', 'va2', 1]]);
      const s = await p.snapshot();
      assert.deepEqual(s.routes.find((r) => r.table === 1002), mp);
      assert.deepEqual(portRoutes(s), ipRoutes());
    });

    await t.test('rules: from/lookup, suppress_prefixlength 0, oif', async () => {
      const rules = [
        rule({ priority: 10100, table: 1001, src: '10.91.0.1/32' }),
        rule({ priority: 10110, table: 1001, oif: 'va' }),
        rule({ priority: 10200, table: 254, suppressPrefixlen: 0 }),
      ];
      for (const r of rules) await apply({ op: 'add', kind: 'rule', rule: r });
      const shown = ipj('rule', 'show').filter((r) => r.protocol === '117');
      assert.deepEqual(shown.map((r) => [r.priority, r.src, r.table, r.oif, r.suppress_prefixlen]), [
        [10100, '10.91.0.1', '1001', undefined, undefined],
        [10110, 'all', '1001', 'va', undefined],
        [10200, 'all', 'main', undefined, 0],
      ]);
      const s = await p.snapshot();
      assert.deepEqual(s.rules.filter((r) => r.protocol === P), rules);
      assert.deepEqual(portRules(s), ipRules());
    });

    await t.test('rules: policy selectors (ipproto, port ranges, dscp, unreachable) written and read back; foreign lookalikes stay apart', async () => {
      const mine = [
        rule({ priority: 10213, table: 1001, src: '10.91.0.20/32', ipProto: 17, dport: { start: 5060, end: 5080 }, sport: { start: 1024, end: 65534 } }),
        { ...rule({ priority: 10214, table: 0, src: '10.91.0.20/32', ipProto: 17, dport: { start: 5060, end: 5080 } }), action: 'unreachable' as const },
        rule({ priority: 10216, table: 1002, dst: '203.0.113.0/24', dscp: 46, iif: 'lo' }),
        // One port each way: Linux >= 6.16 echoes full port masks with it, which must read back as this rule.
        rule({ priority: 10219, table: 1001, dst: '192.0.2.80/32', ipProto: 6, dport: { start: 80, end: 80 }, sport: { start: 5060, end: 5060 } }),
      ];
      for (const r of mine) await apply({ op: 'add', kind: 'rule', rule: r });
      // Foreign rules equal to ours but for one selector uplinkd does not set (uidrange) or sets differently (ipproto).
      ip('-n', NS, 'rule', 'add', 'priority', '10213', 'from', '10.91.0.20', 'ipproto', 'udp', 'dport', '5060-5080', 'sport', '1024-65534', 'uidrange', '1000-2000', 'lookup', '1001');
      ip('-n', NS, 'rule', 'add', 'priority', '10216', 'to', '203.0.113.0/24', 'iif', 'lo', 'ipproto', 'tcp', 'lookup', '1002');
      const s = await p.snapshot();
      assert.deepEqual(s.rules.filter((r) => r.protocol === P && r.priority >= 10213), mine);
      const foreign = s.rules.filter((r) => r.protocol !== P && r.priority >= 10213 && r.priority < 10300);
      assert.deepEqual(foreign.map((r) => [r.priority, r.ipProto, r.unmodelled]), [[10213, 17, ['uidrange=e8030000d0070000']], [10216, 6, undefined]]);
      const shown = ipj<{ priority: number; ipproto?: string; dport_start?: number; dport_end?: number; action?: string }[]>('rule', 'show', 'priority', '10214');
      assert.deepEqual(shown.map((r) => [r.ipproto, r.dport_start, r.dport_end, r.action]), [['udp', 5060, 5080, 'unreachable']]);
      for (const r of foreign) ip('-n', NS, 'rule', 'del', 'priority', String(r.priority), ...(r.unmodelled ? ['uidrange', '1000-2000'] : ['ipproto', 'tcp']));
      for (const r of mine) await apply({ op: 'del', kind: 'rule', rule: r });
    });

    await t.test('nexthops: resilient group with weights and a default nhid route', async () => {
      const nhs: Nexthop[] = [
        { id: 1001, protocol: P, gateway: '10.91.0.2', dev: 'va' },
        { id: 1002, protocol: P, gateway: '10.92.0.2', dev: 'va2' },
        { id: 1000, protocol: P, group: [{ id: 1001, weight: 3 }, { id: 1002, weight: 1 }],
          resilient: { buckets: 32, idleTimer: 120, unbalancedTimer: 30 } },
      ];
      for (const n of nhs) await apply({ op: 'add', kind: 'nexthop', nexthop: n });
      await apply({ op: 'add', kind: 'route', route: route({ table: 1000, dst: '0.0.0.0/0', nhid: 1000 }) });
      assert.deepEqual(byId(ipNexthops()), byId(nhs));
      assert.equal(ipj('route', 'show', 'table', '1000')[0].nhid, 1000);
      const s = await p.snapshot();
      assert.deepEqual(byId(s.nexthops), byId(nhs));
      assert.deepEqual(s.routes.find((r) => r.table === 1000), route({ table: 1000, dst: '0.0.0.0/0', nhid: 1000 }));
      assert.deepEqual(portRoutes(s), ipRoutes());
    });

    await t.test('replace: group weights and a gateway', async () => {
      const group: Nexthop = { id: 1000, protocol: P, group: [{ id: 1001, weight: 1 }, { id: 1002, weight: 2 }],
        resilient: { buckets: 32, idleTimer: 60, unbalancedTimer: 0 } };
      await apply({ op: 'replace', kind: 'nexthop', nexthop: group });
      await apply({ op: 'replace', kind: 'route', route: route({ table: 1001, dst: '0.0.0.0/0', gateway: '10.91.0.3', dev: 'va' }) });
      assert.deepEqual(ipNexthops().find((n) => n.id === 1000), group);
      const shown = ipj('route', 'show', 'table', '1001', 'default');
      assert.deepEqual(shown.map((r) => r.gateway), ['10.91.0.3'], 'replaced, not added next to the old one');
    });

    await t.test('EEXIST on add and ENOENT/ESRCH on del are silent; del removes', async () => {
      const r = rule({ priority: 10110, table: 1001, oif: 'va' });
      await apply({ op: 'add', kind: 'rule', rule: r });
      const defRoute = route({ table: 1001, dst: '0.0.0.0/0', gateway: '10.91.0.3', dev: 'va' });
      await apply({ op: 'add', kind: 'route', route: defRoute });
      await apply({ op: 'add', kind: 'nexthop', nexthop: { id: 1001, protocol: P, gateway: '10.91.0.2', dev: 'va' } });
      for (let i = 0; i < 2; i++) {
        await apply({ op: 'del', kind: 'rule', rule: r });
        await apply({ op: 'del', kind: 'route', route: defRoute });
        await apply({ op: 'del', kind: 'route', route: route({ table: 1000, dst: '0.0.0.0/0', nhid: 1000 }) });
        await apply({ op: 'del', kind: 'nexthop', nexthop: { id: 1000, protocol: P } });
      }
      await apply({ op: 'del', kind: 'route', route: route({ table: 4321, dst: '10.0.0.0/8', dev: 'va' }) });
      await apply({ op: 'del', kind: 'route', route: route({ table: 1001, dst: '0.0.0.0/0', dev: 'gone0' }) });
      assert.equal(ipj('rule', 'show').some((x) => x.priority === 10110), false);
      assert.deepEqual(ipj('route', 'show', 'table', '1001', 'default'), []);
      assert.equal(ipNexthops().some((n) => n.id === 1000), false);
      assert.deepEqual(portRoutes(await p.snapshot()), ipRoutes());
    });

    await t.test('refusals become UplinkdError kernel with errno and the kernel\'s extended ACK text; unknown dev named', async () => {
      await assert.rejects(apply({ op: 'add', kind: 'route', route: route({ table: 1001, dst: '10.99.0.0/24', gateway: '10.55.0.1', dev: 'va' }) }),
        (e: unknown) => e instanceof UplinkdError && e.code === 'kernel' && e.detail.errno === 'ENETUNREACH'
          && e.detail.kernelMessage === 'Nexthop has invalid gateway'
          && e.message === 'add route failed: ENETUNREACH (kernel: Nexthop has invalid gateway): 10.99.0.0/24 via 10.55.0.1 dev va table 1001 proto 117');
      await assert.rejects(apply({ op: 'add', kind: 'route', route: route({ table: 1001, dst: '10.99.1.0/24', nhid: 4242 }) }),
        (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'EINVAL' && e.detail.kernelMessage === 'Nexthop id does not exist');
      await assert.rejects(apply({ op: 'add', kind: 'route', route: route({ table: 1001, dst: '10.99.0.0/24', dev: 'nope0' }) }),
        (e: unknown) => e instanceof UplinkdError && e.code === 'kernel' && e.message === 'no interface nope0');
      await assert.rejects(apply({ op: 'replace', kind: 'nexthop', nexthop: { id: 1002, protocol: P, group: [{ id: 999, weight: 1 }] } }),
        (e: unknown) => e instanceof UplinkdError && e.code === 'kernel' && typeof e.detail.errno === 'string');
    });

    await t.test('pipelined reconcile of ~400 changes in one go: the kernel ends as one by one would leave it', async () => {
      const nhAdd = (n: Nexthop): Change => ({ op: 'add', kind: 'nexthop', nexthop: n });
      const group: Nexthop = { id: 3000, protocol: P, group: [{ id: 3001, weight: 2 }, { id: 3002, weight: 1 }] };
      const viaGroup = route({ table: 3000, dst: '0.0.0.0/0', nhid: 3000 });
      const perTable = (tb: number): Route[] => [
        route({ table: tb, dst: '10.91.0.0/24', scope: 'link', dev: 'va', src: '10.91.0.1' }),
        route({ table: tb, dst: '0.0.0.0/0', gateway: '10.91.0.2', dev: 'va' }),
        route({ table: tb, dst: '10.92.0.0/24', scope: 'link', dev: 'va2' }),
      ];
      const tables = Array.from({ length: 100 }, (_, i) => 3001 + i);
      const unreachable = route({ table: 3050, dst: '10.99.0.0/24', gateway: '10.55.0.1', dev: 'va' });
      const changes: Change[] = [
        nhAdd({ id: 3001, protocol: P, gateway: '10.94.0.2', dev: 'vc' }), // vc is new to the port: links re-read, the rest waits
        nhAdd({ id: 3002, protocol: P, gateway: '10.91.0.2', dev: 'va' }),
        nhAdd(group), // needs 3001 in place
        { op: 'add', kind: 'route', route: viaGroup },
        ...tables.slice(0, 50).flatMap((tb) => perTable(tb).map((r): Change => ({ op: 'add', kind: 'route', route: r }))),
        { op: 'add', kind: 'route', route: unreachable }, // fails: ENETUNREACH
        { op: 'del', kind: 'route', route: unreachable }, // never made: ESRCH, tolerated
        nhAdd({ id: 3003, protocol: P, gateway: '10.55.0.1', dev: 'va' }), // fails
        { op: 'add', kind: 'route', route: route({ table: 3101, dst: '0.0.0.0/0', nhid: 3003 }) }, // fails with it
        ...tables.slice(50).flatMap((tb) => perTable(tb).map((r): Change => ({ op: 'add', kind: 'route', route: r }))),
        ...tables.map((tb, i): Change => ({ op: 'add', kind: 'rule', rule: rule({ priority: 20000 + i, table: tb, src: `10.91.${i}.1/32` }) })),
        // The group goes (taking its route); deleting the route then finds no nexthop (EINVAL, tolerated only
        // if 3000 is gone when the delete is handled, not after the re-add right behind it); then both return.
        { op: 'del', kind: 'nexthop', nexthop: { id: 3000, protocol: P } },
        { op: 'del', kind: 'route', route: viaGroup },
        nhAdd(group),
        { op: 'add', kind: 'route', route: viaGroup },
      ];
      const failedAt = [changes.findIndex((c) => c.kind === 'route' && c.route === unreachable),
        changes.findIndex((c) => c.kind === 'nexthop' && c.nexthop.id === 3003)];
      failedAt.push(failedAt[1]! + 1);
      const r = reconcileInNs(changes, [
        ['link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'vd'],
        ['addr', 'add', '10.94.0.1/24', 'dev', 'vc'],
        ['link', 'set', 'vc', 'up'],
        ['link', 'set', 'vd', 'up'],
      ]);
      assert.ok(changes.length > 400);
      assert.deepEqual(r.failed.map((f) => f.index), failedAt);
      assert.deepEqual(r.failed.map((f) => f.errno), ['ENETUNREACH', 'ENETUNREACH', 'EINVAL']);
      assert.equal(r.applied, changes.length - 3);

      const mine = (s: string) => Number(s.split(' ')[0]) >= 3000 && Number(s.split(' ')[0]) < 4000;
      const expected = [viaGroup, ...tables.flatMap(perTable)].map((x) => portRoutes({ links: [], addresses: [], routes: [x], rules: [], nexthops: [] })[0]!);
      assert.deepEqual(ipRoutes().filter(mine), expected.sort());
      const s = await p.snapshot();
      assert.deepEqual(portRoutes(s).filter(mine), ipRoutes().filter(mine));
      assert.deepEqual(ipRules().filter((x) => Number(x.split(' ')[0]) >= 20000 && Number(x.split(' ')[0]) < 21000),
        tables.map((tb, i) => [20000 + i, `10.91.${i}.1/32`, tb, '', ''].join(' ')).sort());
      assert.deepEqual(byId(ipNexthops().filter((n) => n.id >= 3000)), byId([
        { id: 3001, protocol: P, gateway: '10.94.0.2', dev: 'vc' }, { id: 3002, protocol: P, gateway: '10.91.0.2', dev: 'va' }, group]));
    });

    await t.test('subscribe: address, rule, link, nexthop and route events', async () => {
      const events: KernelEvent[] = [];
      const overruns: number[] = [];
      const stop = p.subscribe((e) => events.push(e), () => overruns.push(1));
      await p.snapshot(); // answered after the subscription is in place
      ip('-n', NS, 'addr', 'add', '10.93.0.1/24', 'dev', 'va');
      ip('-n', NS, 'rule', 'add', 'from', '10.93.0.1', 'lookup', '1003', 'priority', '10105');
      await apply({ op: 'add', kind: 'nexthop', nexthop: { id: 2001, protocol: P, gateway: '10.92.0.2', dev: 'va2' } });
      ip('-n', NS, 'link', 'set', 'va2', 'down');
      const seen = (kind: string, action: string, text: string) =>
        events.some((e) => e.kind === kind && e.action === action && e.summary.includes(text));
      await waitFor('address event', () => seen('address', 'new', 'addr va 10.93.0.1/24'));
      await waitFor('rule event', () => seen('rule', 'new', 'from 10.93.0.1/32 lookup 1003 priority 10105'));
      await waitFor('nexthop event', () => seen('nexthop', 'new', 'id 2001 via 10.92.0.2 dev va2'));
      await waitFor('link event', () => seen('link', 'new', 'link va2') && events.some((e) => e.kind === 'link' && e.summary.startsWith('link va2') && e.summary.includes('down')));
      await waitFor('route event', () => seen('route', 'new', '10.93.0.0/24'));
      assert.ok(events.every((e) => typeof e.at === 'number'));
      stop();
      assert.deepEqual(overruns, []);
    });

    await t.test('scoped snapshot: uplinkd\'s tables whole, its protocol anywhere, default routes on its devices anywhere; a foreign table is neither read nor an event', async () => {
      const interest = { tables: [1001], protocols: [P], devices: ['va'] };
      const key = (r: Route) => JSON.stringify(r);
      const expected = async () => {
        const s = await p.snapshot();
        return s.routes.filter((r) => routeOfInterest(r, interest, new Map(s.nexthops.map((n) => [n.id, n])))).map(key).sort();
      };
      // A port of its own: discovery with kernel-filtered dumps, then table by table; `p` has read scoped snapshots before.
      const q = await NetnsKernelPort.open(NS);
      try {
        const scoped = async () => (await q.snapshot(interest)).routes.map(key).sort();
        const scopedWhole = async () => (await p.snapshot(interest)).routes.map(key).sort();
        const batch = Array.from({ length: 300 }, (_, i) => `route add 100.64.${i >> 4}.${(i & 15) * 16}/28 dev va table 3900 proto 186`).join('\n');
        execFileSync('ip', ['-n', NS, '-batch', '-'], { input: `${batch}\n` });
        ip('-n', NS, 'route', 'add', 'default', 'via', '10.91.0.2', 'dev', 'va', 'table', '3901', 'proto', 'dhcp', 'metric', '5');
        ip('-n', NS, 'link', 'set', 'va2', 'up');
        ip('-n', NS, 'route', 'add', 'default', 'dev', 'va2', 'table', '3903', 'proto', 'dhcp'); // not on a device of interest
        ip('-n', NS, 'route', 'add', '10.97.0.0/24', 'dev', 'va', 'table', '3902', 'proto', String(P));
        ip('-n', NS, 'route', 'add', '10.98.0.0/24', 'dev', 'va', 'table', '1001', 'proto', 'static');
        const first = await scoped();
        assert.deepEqual(first, await expected());
        assert.deepEqual(await scopedWhole(), first);
        assert.ok(!first.some((r) => r.includes('"table":3900')), `nothing of the foreign table: ${first.filter((r) => r.includes('3900')).slice(0, 3).join(' ')}`);
        assert.ok(first.some((r) => r.includes('"table":3901')) && first.some((r) => r.includes('"table":3902')) && first.some((r) => r.includes('10.98.0.0/24')));
        assert.ok(!first.some((r) => r.includes('"table":3903')), 'a default route on another device is not read');

        const events: KernelEvent[] = [];
        const stop = q.subscribe((e) => events.push(e), () => undefined);
        await q.snapshot(interest);
        execFileSync('ip', ['-n', NS, '-batch', '-'], { input: `${batch.replaceAll('route add', 'route del')}\n` });
        ip('-n', NS, 'route', 'add', 'default', 'via', '10.91.0.2', 'dev', 'va', 'table', '3905', 'proto', 'dhcp');
        await waitFor('default route event in a new table', () => events.some((e) => e.kind === 'route' && e.route?.table === 3905));
        assert.ok(!events.some((e) => e.route?.table === 3900), 'no events for the foreign table\'s 300 deletions');
        stop();
        ip('-n', NS, 'route', 'del', 'default', 'table', '3901');
        ip('-n', NS, 'route', 'del', 'default', 'table', '3903');
        const later = await scoped();
        assert.deepEqual(later, await expected(), 'the new table is read (learned from its notification), the emptied one is not');
        assert.ok(later.some((r) => r.includes('"table":3905')) && !later.some((r) => r.includes('"table":3901')));
        assert.deepEqual(await scopedWhole(), later);
      } finally {
        q.close();
      }
    });
  } finally {
    port?.close();
    cleanup();
  }
});
