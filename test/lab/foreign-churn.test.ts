// The daemon's kernel view beside a busy foreign table (a BGP feed): 20,000 routes in table 3000 on
// their own device, withdrawn, re-added and replaced about 1,000 times a second by `ip -batch`, while
// uplinkd's tables, addresses, nexthops and default routes on the uplink device change. After each
// step the view (NetlinkKernelPort with `cache`) must equal a fresh dump of the routes of interest,
// and no notification of the foreign table may become an event; the kernel itself drops them (the
// subscriber socket's filter, src/netlink/filter.ts), so they never reach the process.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelEvent, RouteInterest } from '../../src/kernel/port';
import { settledComparison } from '../support/kernel-view';
import { NetnsKernelPort } from '../support/netns-port';
import { NEEDS_ROOT } from './support';

const PREFIX = `b8${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const PEER = `${PREFIX}p`;
const FOREIGN = 3000;
const ROUTES = 20_000;
/** uplinkd's tables and main, its protocol, and `up0` as the uplink's interface; `bgp0` carries the foreign table. */
const INTEREST: RouteInterest = { tables: [254, 1001], protocols: [117], devices: ['up0'] };

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const inNs = (cmds: string[]): void => {
  execFileSync('ip', ['-n', NS, '-batch', '-'], { input: `${cmds.join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
};
const exists = (ns: string): boolean => ip('netns', 'list').split('\n').some((l) => l.split(' ')[0] === ns);
const prefix = (i: number): string => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;

function cleanup(): void {
  for (const ns of [NS, PEER]) if (exists(ns)) ip('netns', 'del', ns);
}

describe('kernel view beside a churning foreign table', { skip: NEEDS_ROOT, timeout: 300_000 }, () => {
  let cached: NetnsKernelPort | undefined;
  let fresh: NetnsKernelPort | undefined;
  let churn: ChildProcessByStdio<Writable, null, null> | undefined;
  let tick: NodeJS.Timeout | undefined;

  before(async () => {
    cleanup();
    ip('netns', 'add', NS);
    ip('netns', 'add', PEER);
    inNs(['link set lo up',
      `link add up0 type veth peer name pu0 netns ${PEER}`, 'address add 10.70.0.1/24 dev up0', 'link set up0 up',
      `link add bgp0 type veth peer name pb0 netns ${PEER}`, 'address add 10.71.0.1/24 dev bgp0', 'link set bgp0 up']);
    ip('-n', PEER, 'link', 'set', 'pu0', 'up');
    ip('-n', PEER, 'link', 'set', 'pb0', 'up');
    inNs(Array.from({ length: ROUTES }, (_, i) => `route add ${prefix(i)} via 10.71.0.2 dev bgp0 table ${FOREIGN} proto bgp`));
    // Not of interest: a default route in the foreign table on the other device.
    inNs([`route add default via 10.71.0.2 dev bgp0 table ${FOREIGN} proto bgp`]);
    cached = await NetnsKernelPort.open(NS, { cache: true });
    fresh = await NetnsKernelPort.open(NS);
  });

  after(() => {
    if (tick) clearInterval(tick);
    churn?.stdin.end();
    churn?.kill();
    cached?.close();
    fresh?.close();
    cleanup();
  });

  test('the view equals a fresh dump after each change of interest, and the foreign table makes no event', async () => {
    const events: KernelEvent[] = [];
    const stop = cached!.subscribe((e) => events.push(e), () => undefined);
    await cached!.snapshot(INTEREST);
    churn = spawn('ip', ['-n', NS, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    let k = 0;
    tick = setInterval(() => {
      const cmds: string[] = [];
      for (let j = 0; j < 100; j++, k++) {
        const p = prefix((k * 7919) % ROUTES);
        cmds.push([`route del ${p} table ${FOREIGN}`, `route add ${p} via 10.71.0.2 dev bgp0 table ${FOREIGN} proto bgp`,
          `route replace ${p} via 10.71.0.3 dev bgp0 table ${FOREIGN} proto bgp`][k % 3]!);
      }
      churn!.stdin.write(`${cmds.join('\n')}\n`);
    }, 100);

    // Churn alone: the kernel drops the foreign table's notifications before they reach the socket.
    const [receivedBefore, changesBefore] = [await cached!.routeNotifications(), k];
    await sleep(1500);
    const [received, changes] = [(await cached!.routeNotifications()) - receivedBefore, k - changesBefore];
    assert.ok(changes >= 1000, `the foreign table churned (${changes} changes)`);
    assert.ok(received < changes / 100, `${received} route notifications reached the socket during ${changes} foreign changes: the kernel-side filter drops them`);

    const steps: [string, string[]][] = [
      ['routes in our table', ['route add 192.0.2.0/26 via 10.70.0.2 dev up0 src 10.70.0.1 table 1001 proto 117', 'route add default via 10.70.0.2 dev up0 table 1001 proto 117']],
      ['a DHCP default route on the uplink in a table of its own', ['route add default via 10.70.0.2 dev up0 table 3001 proto dhcp metric 5']],
      ['renumbering: an address in a new network, the old one deleted (its routes go without notifications)', ['address add 10.72.0.9/24 dev up0', 'address del 10.70.0.1/24 dev up0',
        'route add 192.0.2.64/26 via 10.72.0.2 dev up0 src 10.72.0.9 table 1001 proto 117']],
      ['a default route in the foreign table moved onto the uplink', [`route replace default via 10.72.0.2 dev up0 table ${FOREIGN} proto bgp`]],
      ['and off it again (the replace says the route of interest is gone)', [`route replace default via 10.71.0.2 dev bgp0 table ${FOREIGN} proto bgp`]],
      ['a default route in another table on a nexthop object on bgp0', ['nexthop add id 50 via 10.71.0.2 dev bgp0 proto bgp', 'route add default nhid 50 table 3002 proto bgp']],
      ['the nexthop moved onto the uplink: its route becomes one of interest', ['nexthop replace id 50 via 10.72.0.2 dev up0 proto bgp']],
      ['and back', ['nexthop replace id 50 via 10.71.0.2 dev bgp0 proto bgp']],
      ['a group on both devices', ['nexthop add id 51 via 10.72.0.2 dev up0 proto bgp', 'nexthop add id 52 group 50/51 proto bgp', 'route add default nhid 52 table 3003 proto bgp']],
      ['our protocol in a foreign table', [`route add 198.51.100.0/24 via 10.71.0.2 dev bgp0 table ${FOREIGN} proto 117`]],
      ['the DHCP table emptied', ['route del default table 3001']],
      ['the uplink renamed away and back', ['link set up0 down', 'link set up0 name up9', 'link set up9 name up0', 'link set up0 up']],
    ];
    let foundOutside = false;
    const receivedBeforeSteps = await cached!.routeNotifications();
    for (const [what, cmds] of steps) {
      inNs(cmds);
      const { dump, view } = await settledComparison(fresh!, cached!, INTEREST);
      assert.deepEqual(view.routes, dump.routes, `after "${what}": the view's routes differ from a fresh dump`);
      assert.deepEqual(view, dump, `after "${what}": the view differs from a fresh dump`);
      if (what === 'our protocol in a foreign table') {
        foundOutside = view.routes!.some((r) => r.includes('"table":3003')) && view.routes!.some((r) => r.includes('"protocol":117') && r.includes(`"table":${FOREIGN}`));
      }
      await sleep(300); // churn between the steps
    }
    stop();
    assert.ok((await cached!.routeNotifications()) > receivedBeforeSteps, 'the routes of interest were notified');
    assert.ok(foundOutside, 'the routes of interest outside our tables were in the view');
    assert.ok(k >= 3000, `the foreign table churned (${k} changes)`);
    const foreign = events.filter((e) => e.route?.table === FOREIGN && e.route.dev === 'bgp0' && e.route.protocol !== 117);
    assert.deepEqual(foreign.map((e) => e.summary), [], 'no event for the foreign table\'s churn');
  });
});
