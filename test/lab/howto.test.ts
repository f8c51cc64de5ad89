// The LARTC HOWTO 4.2 by hand against uplinkd: the seed's own commands (split access with the
// reader's extra routes, and the weighted multipath default) are typed into the router first, the
// routing decisions they give are recorded, they are removed again, and uplinkd — configured with
// the HOWTO's table names T1 and T2 — must make the same decisions and carry real traffic.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inNs, ipIn, ipJson } from '../../lab/exec';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { startTcpEcho } from '../../lab/traffic';
import { apply, assertAllReachable, down, freshLab, NEEDS_ROOT, reachUplinks } from './support';

const PREFIX = `ulhw${process.pid % 1000}-`;
const PORT = 8085;

interface RouteGet {
  dev?: string;
  gateway?: string;
  prefsrc?: string;
}

describe('the LARTC HOWTO 4.2 commands and uplinkd make the same routing decisions', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let config: string;
  /** The HOWTO's symbols, from the lab. */
  let h: { IF0: string; IF1: string; IF2: string; IP1: string; IP2: string; P1: string; P2: string; P0_NET: string; P1_NET: string; P2_NET: string };

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'static' });
    await startTcpEcho(lab.ns.router, PORT);
    const [u1, u2] = lab.uplinks as [LabInfo['uplinks'][0], LabInfo['uplinks'][0]];
    h = {
      IF0: lab.lan.interface, IF1: u1.interface, IF2: u2.interface,
      IP1: u1.address, IP2: u2.address, P1: u1.gateway, P2: u2.gateway,
      P0_NET: lab.lan.network, P1_NET: u1.network, P2_NET: u2.network,
    };
    config = path.join(lab.stateDir, 'howto.yaml');
    await fs.writeFile(config, [
      'uplinks:',
      `  - {name: T1, interface: ${h.IF1}, address: ${h.IP1}/${u1.prefixlen}, gateway: ${h.P1}, weight: 1}`,
      `  - {name: T2, interface: ${h.IF2}, address: ${h.IP2}/${u2.prefixlen}, gateway: ${h.P2}, weight: 1}`,
      `lan: [${h.IF0}]`,
      'default: balance',
      '',
    ].join('\n'));
  });
  after(async () => {
    await labDown(PREFIX);
  });

  /** `ip -j ARGS` as the admin types it in the router: `ip netns exec` shows it the namespace's table names. */
  async function named<T>(args: string[]): Promise<T[]> {
    const r = await inNs(lab.ns.router, 'ip', ['-j', '-4', ...args]);
    return JSON.parse(r.stdout || '[]') as T[];
  }

  /** `ip route get` for the questions the HOWTO answers: replies from each uplink address, to every kind of neighbour. */
  async function decisions(): Promise<Record<string, RouteGet>> {
    const out: Record<string, RouteGet> = {};
    const questions: [string, string[]][] = [
      ['from IP1 to the internet', [lab.internetHost, 'from', h.IP1]],
      ['from IP2 to the internet', [lab.internetHost, 'from', h.IP2]],
      ['from IP1 to the LAN', [lab.lan.hostAddress, 'from', h.IP1]],
      ['from IP2 to the LAN', [lab.lan.hostAddress, 'from', h.IP2]],
      ['from IP1 to provider 2', [h.P2, 'from', h.IP1]],
      ['from IP2 to provider 1', [h.P1, 'from', h.IP2]],
      ['from IP1 to loopback', ['127.0.0.1', 'from', h.IP1]],
    ];
    for (const [what, args] of questions) {
      const [r] = await ipJson<RouteGet>(lab.ns.router, ['route', 'get', ...args]);
      out[what] = { dev: r?.dev, gateway: r?.gateway, prefsrc: r?.prefsrc };
    }
    return out;
  }

  /** The default for traffic with no source chosen: the hops of the multipath route, however it is expressed. */
  async function defaultHops(table: string): Promise<string[]> {
    const [route] = await ipJson<{ nexthops?: { gateway: string; dev: string; weight?: number }[]; nhid?: number }>(
      lab.ns.router, ['route', 'show', 'default', 'table', table]);
    if (route?.nexthops) return route.nexthops.map((n) => `${n.gateway} ${n.dev} ${n.weight ?? 1}`).sort();
    assert.ok(route?.nhid !== undefined, `no default route in table ${table}`);
    const [group] = await ipJson<{ group: { id: number; weight?: number }[] }>(lab.ns.router, ['nexthop', 'show', 'id', String(route.nhid)]);
    const hops: string[] = [];
    for (const m of group!.group) {
      const [nh] = await ipJson<{ gateway: string; dev: string }>(lab.ns.router, ['nexthop', 'show', 'id', String(m.id)]);
      hops.push(`${nh!.gateway} ${nh!.dev} ${m.weight ?? 1}`);
    }
    return hops.sort();
  }

  let byHand: Record<string, RouteGet>;
  let byHandHops: string[];

  it('records the decisions of the HOWTO typed by hand (tables 201 and 202), then removes it', async () => {
    const cmds = [
      // 4.2.1 split access
      `route add ${h.P1_NET} dev ${h.IF1} src ${h.IP1} table 201`,
      `route add default via ${h.P1} table 201`,
      `route add ${h.P2_NET} dev ${h.IF2} src ${h.IP2} table 202`,
      `route add default via ${h.P2} table 202`,
      `rule add from ${h.IP1} table 201`,
      `rule add from ${h.IP2} table 202`,
      // the reader's warning: the LAN, the other provider's network and loopback in each table
      `route add ${h.P0_NET} dev ${h.IF0} table 201`,
      `route add ${h.P2_NET} dev ${h.IF2} table 201`,
      `route add 127.0.0.0/8 dev lo table 201`,
      `route add ${h.P0_NET} dev ${h.IF0} table 202`,
      `route add ${h.P1_NET} dev ${h.IF1} table 202`,
      `route add 127.0.0.0/8 dev lo table 202`,
      // 4.2.2 load balancing, in a table of its own so the lab's main table stays as it is
      `route add default table 203 scope global nexthop via ${h.P1} dev ${h.IF1} weight 1 nexthop via ${h.P2} dev ${h.IF2} weight 1`,
    ];
    for (const c of cmds) await ipIn(lab.ns.router, c.split(' '));
    byHand = await decisions();
    byHandHops = await defaultHops('203');
    assert.equal(byHand['from IP1 to the internet']!.gateway, h.P1, JSON.stringify(byHand));
    assert.equal(byHand['from IP2 to the internet']!.gateway, h.P2, JSON.stringify(byHand));

    for (const c of [`rule del from ${h.IP1} table 201`, `rule del from ${h.IP2} table 202`]) await ipIn(lab.ns.router, c.split(' '));
    for (const t of ['201', '202', '203']) await ipIn(lab.ns.router, ['route', 'flush', 'table', t]);
  });

  it('uplinkd, configured with the HOWTO\'s names T1 and T2, answers every question the same way', async () => {
    assert.ok(byHand, 'the hand-made run must come first');
    await apply(lab, config);
    assert.deepEqual(await decisions(), byHand);
    assert.deepEqual(await defaultHops('uplinkd'), byHandHops);
  });

  it('the tables carry the HOWTO\'s names and routes, and the rules its from-selectors', async () => {
    const t1 = (await named<{ dst: string; gateway?: string; dev?: string }>(['route', 'show', 'table', 'T1'])).map((r) => `${r.dst} ${r.gateway ?? ''} ${r.dev}`.replace(/ +/g, ' ')).sort();
    assert.deepEqual(t1, [
      `${h.P0_NET} ${h.IF0}`,
      `${h.P1_NET} ${h.IF1}`,
      `${h.P2_NET} ${h.IF2}`,
      `127.0.0.0/8 lo`,
      `default ${h.P1} ${h.IF1}`,
    ].sort());
    const from = (await named<{ src?: string; table?: string }>(['rule', 'show'])).filter((r) => r.src === h.IP1 || r.src === h.IP2).map((r) => `${r.src} ${r.table}`).sort();
    assert.deepEqual(from, [`${h.IP1} T1`, `${h.IP2} T2`]);
  });

  it('replies leave through the uplink the request came in on: the internet host reaches both addresses', async () => {
    assertAllReachable(lab, await reachUplinks(lab, PORT));
    await down(lab, config);
  });
});
