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

  test('what the kernel changes without notifications, and what the view no longer dumps for: sources, nexthops', async () => {
    const same = async (step: string) => {
      const { dump, view } = await settledComparison(fresh!, cached!, INTEREST);
      assert.deepEqual(view, dump, `the view differs from a fresh dump after ${step}`);
      return dump;
    };
    // An address removed while another stays on its device: main's routes with it as their source go (fib_sync_down_addr;
    // notified by this kernel, silently by older ones), uplinkd's in its own table stay.
    batch(['address add 10.70.2.10/24 dev v2', 'route add 192.0.2.0/26 via 10.70.2.2 src 10.70.2.10 table main proto static',
      'route add 192.0.2.64/26 via 10.70.2.2 src 10.70.2.10 table main proto 117',
      'route add 192.0.2.128/26 via 10.70.2.2 src 10.70.2.10 table 1001 proto 117'], true);
    assert.equal((await same('the routes with a source were added')).routes!.filter((r) => r.includes('"src":"10.70.2.10"')).length, 3);
    batch(['address del 10.70.2.10/24 dev v2'], true);
    const left = (await same('their source address was deleted')).routes!.filter((r) => r.includes('"src":"10.70.2.10"'));
    assert.deepEqual(left.map((r) => JSON.parse(r).table), [1001], 'the kernel flushed main\'s, kept table 1001\'s');
    // Another program's route on a nexthop that is replaced stays, on the nexthop as it is now.
    batch(['nexthop add id 7 via 10.70.2.2 dev v2', 'route add 0.0.0.0/0 nhid 7 table 1002 proto static'], true);
    await same('a foreign route on nexthop 7');
    batch(['nexthop replace id 7 via 10.70.2.3 dev v2'], true);
    assert.equal((await same('nexthop 7 replaced')).routes!.filter((r) => r.includes('"nhid":7')).length, 1);
    // A deleted nexthop takes its routes along, uplinkd's too; the last member of a group takes the group's.
    batch(['nexthop add id 8 via 10.70.2.2 dev v2 proto 117', 'nexthop add id 9 group 8 proto 117',
      'route add 198.51.100.0/24 nhid 8 table 1001 proto 117', 'route add 198.51.101.0/24 nhid 9 table 1001 proto 117'], true);
    await same('routes on nexthop 8 and on its group 9');
    batch(['nexthop del id 8'], true);
    assert.ok(!(await same('nexthop 8 deleted')).routes!.some((r) => /"nhid":(8|9)\b/.test(r)));
    batch(['route del 0.0.0.0/0 table 1002', 'nexthop del id 7'], true);
  });

  test(`after each of ${BATCHES} random batches of ip changes the view equals a fresh dump`, async () => {
    const seed = Number(process.env.KERNEL_VIEW_SEED ?? Date.now() % 100_000);
    const rnd = prng(seed);
    let counts = { routes: 0, rules: 0, nexthops: 0, addresses: 0 };
    let views = 0;
    // The random world must hold objects of every kind, else the comparison proves little: a seed that made too few
    // goes on for up to twice as many batches more.
    const rich = () => counts.routes > 5 && counts.rules > 3 && counts.nexthops > 1 && counts.addresses > 4;
    for (let b = 0; b < BATCHES || (!rich() && b < 3 * BATCHES); b++) {
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
    assert.ok(views >= BATCHES);
    assert.ok(rich(), `seed ${seed}: too little happened in ${views} batches: ${JSON.stringify(counts)}`);
  });
});
