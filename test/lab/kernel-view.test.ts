// The daemon's incremental kernel view (NetlinkKernelPort with `cache`, kept current from rtnetlink
// notifications) against fresh dumps of a real kernel: random batches of `ip` changes in a network
// namespace (routes in uplinkd's, main and foreign tables, replaces, rules, addresses, nexthops and
// groups, links down/up, deleted and re-created) and after each batch the view must equal a fresh dump.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { settledComparison } from '../support/kernel-view';
import { NetnsKernelPort } from '../support/netns-port';
import type { RouteInterest } from '../../src/kernel/port';
import { prng } from '../support/prng';
import { NEEDS_ROOT } from './support';

const PREFIX = `p7v${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const PEER = `${PREFIX}p`;
const INTEREST: RouteInterest = { tables: [254, 1001, 1002], protocols: [117], devices: ['v0', 'v1'] };
const BATCHES = 60;
const DEVS = ['v0', 'v1', 'v2', 'v3'];

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
/** Runs the commands in one `ip -force -batch`; commands the kernel refuses are part of the randomness, unless `strict`. */
const batch = (cmds: string[], strict = false): void => {
  const r = spawnSync('ip', ['-n', NS, '-force', '-batch', '-'], { input: `${cmds.join('\n')}\n`, encoding: 'utf8' });
  if (r.error) throw r.error;
  if (strict && r.status !== 0) throw new Error(`ip -batch failed: ${r.stderr}`);
};
const exists = (ns: string): boolean => ip('netns', 'list').split('\n').some((l) => l.split(' ')[0] === ns);

function cleanup(): void {
  for (const ns of [NS, PEER]) if (exists(ns)) ip('netns', 'del', ns);
}

function addVeth(i: number): string[] {
  return [`link add v${i} type veth peer name p${i} netns ${PEER}`, `address add 10.70.${i}.1/24 dev v${i}`, `link set v${i} up`];
}

/** Re-creates, now and then, a veth a batch deleted (its peer up, so it has carrier): links come and go. */
function relink(rnd: () => number): void {
  const present = new Set(ip('-n', NS, '-o', 'link', 'show').split('\n').map((l) => l.split(': ')[1]?.split('@')[0]));
  for (let i = 0; i < DEVS.length; i++) {
    if (present.has(`v${i}`) || rnd() < 0.5) continue;
    batch(addVeth(i), true);
    ip('-n', PEER, 'link', 'set', `p${i}`, 'up');
  }
}

/** One random change, as an `ip -batch` line (or a few). */
function randomChange(rnd: () => number): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const dev = pick(DEVS);
  const i = Number(dev.slice(1));
  const gw = `10.70.${i}.${2 + Math.floor(rnd() * 3)}`;
  const table = pick(['1001', '1002', 'main', '3000', '3001']);
  const dst = pick(['0.0.0.0/0', `198.51.${Math.floor(rnd() * 4)}.0/24`, `203.0.113.${Math.floor(rnd() * 8) * 16}/28`]);
  const proto = pick(['117', 'static', 'boot', 'dhcp']);
  const metric = pick(['', ' metric 10', ' metric 20']);
  const nh = 1 + Math.floor(rnd() * 6);
  switch (Math.floor(rnd() * 16)) {
    case 0: case 1: case 2: return [`route add ${dst} via ${gw} dev ${dev} table ${table} proto ${proto}${metric}`];
    case 3: return [`route del ${dst} table ${table}${metric}`];
    case 4: return [`route replace ${dst} via ${gw} dev ${dev} table ${table} proto ${proto}${metric}`];
    case 5: return [`route append ${dst} via ${gw} dev ${dev} table ${table} proto ${proto}${metric}`];
    case 6: return [`route add ${dst} nhid ${nh} table ${table} proto ${proto}${metric}`, `route add ${dst} nhid 100 table ${table} proto 117`];
    case 7: return [`rule add priority ${10000 + Math.floor(rnd() * 5)} from 10.70.${i}.${Math.floor(rnd() * 4)} lookup ${table} proto ${proto}`];
    case 8: return [`rule del priority ${10000 + Math.floor(rnd() * 5)}`];
    case 9: return [`address add 10.70.${i}.${10 + Math.floor(rnd() * 4)}/24 dev ${dev}`, `route add 192.0.2.${Math.floor(rnd() * 4) * 64}/26 via ${gw} src 10.70.${i}.10 table ${table} proto 117`];
    case 10: return [`address del 10.70.${i}.${pick(['1', '10', '11', '12'])}/24 dev ${dev}`];
    case 11: return [`nexthop replace id ${nh} via ${gw} dev ${dev} proto 117`,
      `nexthop replace id 100 group ${[1, 2, 3].map((n) => `${n},${1 + Math.floor(rnd() * 3)}`).join('/')} type resilient buckets 8 proto 117`];
    case 12: return [`nexthop del id ${nh}`];
    case 13: return rnd() < 0.5 ? [`link set ${dev} down`] : [`link set ${dev} down`, `link set ${dev} up`];
    case 14: return rnd() < 0.3 ? [`link del ${dev}`] : [`link set ${dev} up`];
    default: return [`route add ${dst} dev ${dev} scope link table ${table} proto ${proto}${metric}`];
  }
}

describe('incremental kernel view', { skip: NEEDS_ROOT, timeout: 300_000 }, () => {
  let cached: NetnsKernelPort | undefined;
  let fresh: NetnsKernelPort | undefined;

  before(async () => {
    cleanup();
    ip('netns', 'add', NS);
    ip('netns', 'add', PEER);
    batch(['link set lo up', ...DEVS.flatMap((_, i) => addVeth(i))], true);
    for (let i = 0; i < DEVS.length; i++) ip('-n', PEER, 'link', 'set', `p${i}`, 'up');
    cached = await NetnsKernelPort.open(NS, { cache: true });
    fresh = await NetnsKernelPort.open(NS);
  });

  after(() => {
    cached?.close();
    fresh?.close();
    cleanup();
  });

  test(`after each of ${BATCHES} random batches of ip changes the view equals a fresh dump`, async () => {
    const seed = Number(process.env.KERNEL_VIEW_SEED ?? Date.now() % 100_000);
    const rnd = prng(seed);
    let counts = { routes: 0, rules: 0, nexthops: 0, addresses: 0 };
    let views = 0;
    for (let b = 0; b < BATCHES; b++) {
      const cmds = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => randomChange(rnd)).flat();
      batch(cmds);
      relink(rnd);
      const { dump, view } = await settledComparison(fresh!, cached!, INTEREST);
      assert.deepEqual(view, dump, `seed ${seed}, batch ${b}: the view differs from a fresh dump after:\n${cmds.join('\n')}`);
      views++;
      counts = {
        routes: Math.max(counts.routes, dump.routes!.length), rules: Math.max(counts.rules, dump.rules!.length),
        nexthops: Math.max(counts.nexthops, dump.nexthops!.length), addresses: Math.max(counts.addresses, dump.addresses!.length),
      };
    }
    assert.equal(views, BATCHES);
    // The random world must have held objects of every kind, else the comparison proved little.
    assert.ok(counts.routes > 5 && counts.rules > 3 && counts.nexthops > 1 && counts.addresses > 4, `seed ${seed}: too little happened: ${JSON.stringify(counts)}`);
  });
});
