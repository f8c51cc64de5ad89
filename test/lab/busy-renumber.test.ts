// A DHCP uplink renumbering under the daemon beside a churning foreign table (a BGP feed: 20,000 routes
// in table 3000, about 1,000 changes a second). Each renumbering must converge (new rule, table routes and
// nexthop) with traffic from the new address answered through the uplink's table; when the uplink loses its
// gateway, its nexthop is deleted and the real kernel shrinks the balance group itself (no group replace, which
// would walk every table), leaving exactly the group the plan wants.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, ipIn, run, waitFor } from '../../lab/exec';
import { UPLINKD_BIN } from '../../lab/inspect';
import { NEEDS_ROOT } from './support';

const PREFIX = `b9${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const PEER = `${PREFIX}p`;
const DIR = `/run/uplinkd-lab/${PREFIX}busy`;
const FOREIGN = 3000;
const ROUTES = 20_000;
const prefix = (i: number): string => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
/** Lease i: address, network and gateway all change (four /24s on the provider's side). */
const lease = (i: number) => ({ ip: `10.20.${i % 4}.${10 + i}`, gw: `10.20.${i % 4}.1`, net: `10.20.${i % 4}.0/24` });

function config(dir: string): string {
  return [
    'uplinks:',
    '  - name: isp1',
    '    interface: wan0',
    '    dhcp: true',
    '  - name: isp2',
    '    interface: wan1',
    '    address: 10.30.0.2/24',
    '    gateway: 10.30.0.1',
    'default: balance',
    'daemon:',
    '  debounce: 5ms',
    'paths:',
    `  control_socket: ${JSON.stringify(path.join(dir, 'control.sock'))}`,
    `  rt_tables: ${JSON.stringify(path.join(dir, 'rt_tables.conf'))}`,
    `  rt_protos: ${JSON.stringify(path.join(dir, 'rt_protos.conf'))}`,
    `  hooks_dir: ${JSON.stringify(path.join(dir, 'hooks.d'))}`,
    `  leases: [${JSON.stringify(path.join(dir, 'leases', '*.lease'))}]`,
    '',
  ].join('\n');
}

async function cleanup(): Promise<void> {
  for (const ns of [NS, PEER]) await run('ip', ['netns', 'del', ns], { allowFail: true });
  await fs.rm(DIR, { recursive: true, force: true });
}

describe('renumbering beside a churning foreign table', { skip: NEEDS_ROOT, timeout: 300_000 }, () => {
  let daemon: RunningDaemon | undefined;
  let churn: ChildProcessByStdio<Writable, null, null> | undefined;
  let tick: NodeJS.Timeout | undefined;
  const text = config(DIR);
  const table = parseConfig(text, 'uplinkd.yaml').uplinks.find((u) => u.name === 'isp1')!.table;
  const other = parseConfig(text, 'uplinkd.yaml').uplinks.find((u) => u.name === 'isp2')!.table;

  before(async () => {
    await cleanup();
    await fs.mkdir(path.join(DIR, 'leases'), { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(DIR, 'uplinkd.yaml'), text);
    await run('ip', ['netns', 'add', NS]);
    await run('ip', ['netns', 'add', PEER]);
    await ipIn(NS, ['-batch', '-'], { input: ['link set lo up',
      `link add wan0 type veth peer name p0 netns ${PEER}`, 'link set wan0 up',
      `link add wan1 type veth peer name p1 netns ${PEER}`, 'address add 10.30.0.2/24 dev wan1', 'link set wan1 up',
      `link add bgp0 type veth peer name pb netns ${PEER}`, 'address add 10.71.0.1/24 dev bgp0', 'link set bgp0 up', ''].join('\n') });
    // The provider side: every lease's gateway on p0, and an "internet" address that answers.
    await ipIn(PEER, ['-batch', '-'], { input: ['link set lo up', 'address add 203.0.113.1/32 dev lo',
      ...[0, 1, 2, 3].map((k) => `address add 10.20.${k}.1/24 dev p0`), 'link set p0 up',
      'address add 10.30.0.1/24 dev p1', 'link set p1 up', 'link set pb up', ''].join('\n') });
    await ipIn(NS, ['-batch', '-'], { input: `${Array.from({ length: ROUTES }, (_, i) => `route add ${prefix(i)} via 10.71.0.2 dev bgp0 table ${FOREIGN} proto bgp`).join('\n')}\n`, timeoutMs: 120_000 });
    const first = lease(0);
    await ipIn(NS, ['address', 'add', `${first.ip}/24`, 'dev', 'wan0', 'valid_lft', '3600', 'preferred_lft', '3600']);
    await ipIn(NS, ['route', 'add', 'default', 'via', first.gw, 'dev', 'wan0', 'proto', 'dhcp']);
    daemon = await startDaemon(NS, path.join(DIR, 'uplinkd.yaml'));
    churn = spawn('ip', ['-n', NS, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    let k = 0;
    tick = setInterval(() => {
      const batch: string[] = [];
      for (let j = 0; j < 100; j++, k++) {
        const p = prefix((k * 7919) % ROUTES);
        batch.push(k % 2 === 0 ? `route del ${p} table ${FOREIGN}` : `route add ${p} via 10.71.0.2 dev bgp0 table ${FOREIGN} proto bgp`);
      }
      churn!.stdin.write(`${batch.join('\n')}\n`);
    }, 100);
  });

  after(async () => {
    if (tick) clearInterval(tick);
    churn?.stdin.end();
    churn?.kill();
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await cleanup();
  });

  const show = async (...args: string[]): Promise<string> => (await ipIn(NS, args)).stdout;

  test('each renumbering converges and traffic from the new address is answered through the uplink', async () => {
    for (let i = 1; i <= 6; i++) {
      const old = lease(i - 1);
      const next = lease(i);
      // What a DHCP client does when its lease changes address.
      await ipIn(NS, ['route', 'del', 'default', 'via', old.gw, 'dev', 'wan0'], { allowFail: true });
      await ipIn(NS, ['address', 'del', `${old.ip}/24`, 'dev', 'wan0']);
      await ipIn(NS, ['address', 'add', `${next.ip}/24`, 'dev', 'wan0', 'valid_lft', '3600', 'preferred_lft', '3600']);
      await ipIn(NS, ['route', 'add', 'default', 'via', next.gw, 'dev', 'wan0', 'proto', 'dhcp']);
      await waitFor(`renumbering ${i} to ${next.ip}`, async () => {
        const rules = await show('rule', 'show');
        const routes = await show('route', 'show', 'table', String(table));
        const nexthops = await show('nexthop', 'show');
        const ok = rules.includes(`from ${next.ip} lookup ${table}`) && !rules.includes(`from ${old.ip} lookup`)
          && routes.includes(`default via ${next.gw} dev wan0`) && routes.includes(`${next.net} dev wan0`)
          && nexthops.includes(`id ${table} via ${next.gw} dev wan0`) && nexthops.includes(`group ${table}/${other}`);
        return ok || undefined;
      }, 10_000, 20).catch(async (e: Error) => {
        // What the kernel holds and what the daemon did, to tell a slow cycle from a wrong one.
        const state = [await show('rule', 'show'), await show('route', 'show', 'table', String(table)), await show('nexthop', 'show')].join('\n');
        throw new Error(`${e.message}\n${state}\n${daemon!.lines.slice(-30).join('\n')}`);
      });
      const ping = await inNs(NS, 'ping', ['-c', '1', '-W', '2', '-I', next.ip, '203.0.113.1'], { allowFail: true });
      assert.equal(ping.code, 0, `ping from ${next.ip}: ${ping.stdout}${ping.stderr}`);
    }
    assert.deepEqual(daemon!.lines.filter((l) => /event=(apply-failed|cycle-failed|overrun)/.test(l)), []);
  });

  test('losing the gateway deletes the nexthop; the kernel shrinks the group, which is then as planned', async () => {
    const mark = daemon!.lines.length;
    const last = lease(6);
    await ipIn(NS, ['route', 'del', 'default', 'via', last.gw, 'dev', 'wan0']);
    await waitFor('the group without isp1', async () => {
      const nexthops = await show('nexthop', 'show');
      return (!nexthops.includes(`id ${table} `) && nexthops.includes(`group ${other} `)) || undefined;
    }, 10_000, 20);
    const applied = daemon!.lines.slice(mark).filter((l) => l.includes('event=apply '));
    assert.ok(applied.some((l) => l.includes(`change="ip nexthop del id ${table}"`)), applied.join('\n'));
    assert.ok(!applied.some((l) => l.includes('nexthop replace id 1000')), applied.join('\n'));
    // The real kernel's group is the planned one: a plan against it changes nothing.
    const plan = await waitFor('no changes left', async () => {
      const r = await inNs(NS, process.execPath, [UPLINKD_BIN, 'plan', '-c', path.join(DIR, 'uplinkd.yaml')], { allowFail: true });
      return r.stdout.includes('no changes') ? r.stdout : undefined;
    }, 10_000, 100);
    assert.match(plan, /no changes/);
  });
});
