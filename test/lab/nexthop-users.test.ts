// Another program's route on one of uplinkd's nexthop objects (`ip route add 203.0.113.0/24 nhid 1002 table 3000
// proto static`), on the real kernel: `uplinkd down` and the daemon's removal of the uplink (a reload) keep that
// nexthop, say so, and remove everything else; real pings through the route before and after. The control: deleting
// the nexthop as uplinkd would have done makes the kernel delete the route, and the pings fail.
// A router namespace with two static uplinks; isp2's gateway (192.0.2.1) is a peer namespace that also holds
// 203.0.113.1, reached through the other program's rule `to 203.0.113.0/24 lookup 3000`.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryDaemon } from '../../src/daemon/control-client';
import type { DaemonStatus } from '../../src/daemon/daemon';
import { startDaemon, stopDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { inNs, ipIn, ipJson, run, waitFor } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `fx7-nh${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const PEER = `${PREFIX}p`;
const STATE = `${stateDirOf(PREFIX)}r`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');
const ISP1 = '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1, table: 1001}';
const ISP2 = '  - {name: isp2, interface: wan1, address: 192.0.2.2/24, gateway: 192.0.2.1, table: 1002}';
const text = (uplinks: string[]) => ['uplinks:', ...uplinks, ...statePaths(STATE), 'daemon:', '  debounce: 5ms', ''].join('\n');
/** isp2 probed through a target of its own on the peer: its address removed, isp2 fails its health checks alone. */
const TARGET = '203.0.113.9';
const ISP2_MONITORED = `  - {name: isp2, interface: wan1, address: 192.0.2.2/24, gateway: 192.0.2.1, table: 1002, monitor: {targets: [${TARGET}]}}`;
const FOREIGN_ROUTE = ['203.0.113.0/24', 'nhid', '1002', 'table', '3000', 'proto', 'static'];
const FOREIGN_RULE = ['to', '203.0.113.0/24', 'lookup', '3000', 'priority', '500'];

interface NexthopJson { id: number; protocol?: string; group?: { id: number }[] }
interface RouteJson { dst: string; nhid?: number; protocol?: string }

const nexthops = () => ipJson<NexthopJson>(NS, ['nexthop', 'show']);
const foreignRoute = async () => (await ipJson<RouteJson>(NS, ['route', 'show', 'table', '3000'])).find((r) => r.dst === '203.0.113.0/24');
/** Whether 2 pings from the router reach 203.0.113.1, behind isp2's gateway, through the other program's route. */
const reaches = async () => (await inNs(NS, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', '203.0.113.1'], { allowFail: true })).code === 0;

async function addForeign(): Promise<void> {
  await ipIn(NS, ['route', 'add', ...FOREIGN_ROUTE]);
  await ipIn(NS, ['rule', 'add', ...FOREIGN_RULE]);
}

async function removeForeign(): Promise<void> {
  await ipIn(NS, ['rule', 'del', ...FOREIGN_RULE], { allowFail: true });
  await ipIn(NS, ['route', 'del', '203.0.113.0/24', 'table', '3000'], { allowFail: true });
}

describe('another program\'s route on an uplinkd nexthop', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    await run('ip', ['netns', 'del', PEER], { allowFail: true });
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24'], ['wan1', '192.0.2.2/24']]);
    await run('ip', ['netns', 'add', PEER]);
    await ipIn(NS, ['link', 'set', 'wan1p', 'netns', PEER]);
    await ipIn(PEER, ['addr', 'add', '192.0.2.1/24', 'dev', 'wan1p']);
    await ipIn(PEER, ['addr', 'add', '203.0.113.1/32', 'dev', 'lo']);
    await ipIn(PEER, ['link', 'set', 'wan1p', 'up']);
    await ipIn(PEER, ['link', 'set', 'lo', 'up']);
  });
  after(async () => {
    await run('ip', ['netns', 'del', PEER], { allowFail: true });
    await removeDaemonNamespace(daemon, CONFIG, NS, STATE);
  });

  it('`uplinkd down` keeps the nexthop, names the route, exits 1 and removes the rest; deleting the nexthop would have deleted the route', async () => {
    await fs.writeFile(CONFIG, text([ISP1, ISP2]));
    const applied = await uplinkd(NS, ['apply', '-c', CONFIG]);
    assert.equal(applied.code, 0, applied.stderr);
    await addForeign();
    try {
      assert.ok(await reaches(), 'the other program\'s route works before down');
      const down = await uplinkd(NS, ['down', '-c', CONFIG]);
      assert.equal(down.code, 1, `down says it did not remove everything:\n${down.stdout}\n${down.stderr}`);
      assert.match(down.stderr, /uplinkd: nexthop id 1002 via 192\.0\.2\.1 dev wan1 proto 117 kept: .*route 203\.0\.113\.0\/24 nhid 1002 table 3000 proto static \(protocol static\)/);
      assert.match(down.stdout, /changes applied, 1 nexthop kept for other programs' routes$/m);
      const kept = await foreignRoute();
      assert.equal(kept?.nhid, 1002, 'the other program\'s route survives down');
      assert.equal(kept?.protocol, 'static');
      assert.deepEqual((await nexthops()).map((n) => n.id), [1002], 'only the nexthop in use is left');
      assert.deepEqual(await ipJson(NS, ['route', 'show', 'table', 'all', 'proto', '117']), []);
      assert.ok(!(await ipJson<{ protocol?: string }>(NS, ['rule', 'show'])).some((r) => r.protocol === '117'), 'uplinkd\'s rules are gone');
      assert.ok(await reaches(), 'the other program\'s route still works after down');
      // The control: what uplinkd did before, deleting its nexthop, makes the kernel delete the other program's route.
      await ipIn(NS, ['nexthop', 'del', 'id', '1002']);
      assert.equal(await foreignRoute(), undefined, 'the kernel deletes a route with its nexthop');
      assert.equal(await reaches(), false);
    } finally {
      await removeForeign();
    }
  });

  it('the daemon removing the uplink on reload keeps its nexthop for the route, says so in its log and status, and balances without it', async () => {
    await fs.writeFile(CONFIG, text([ISP1, ISP2]));
    daemon = await startDaemon(NS, CONFIG);
    const socket = path.join(STATE, 'control.sock');
    const status = () => queryDaemon(socket, { cmd: 'status' }) as Promise<DaemonStatus & { text: string }>;
    await waitFor('in sync with two uplinks', async () => ((await status()).inSync ? true : undefined), 10_000);
    await addForeign();
    try {
      await fs.writeFile(CONFIG, text([ISP1]));
      const reload = await uplinkd(NS, ['reload', '-c', CONFIG]);
      assert.equal(reload.code, 0, `${reload.stdout}\n${reload.stderr}`);
      const line = await waitForLine(daemon, /event=nexthop-kept/, 10_000);
      assert.match(line, /level=warn/);
      assert.match(line, /nexthop id 1002 via 192\.0\.2\.1 dev wan1 proto 117 kept: .*route 203\.0\.113\.0\/24 nhid 1002 table 3000 proto static/);
      const s = await status();
      assert.equal(s.inSync, false);
      assert.match(s.kept?.join('\n') ?? '', /^nexthop id 1002 .* kept: /);
      assert.match(s.text, /kernel does NOT match the plan: nexthops kept for other programs:\n {2}nexthop id 1002/);
      assert.ok(await foreignRoute(), 'the other program\'s route survives the uplink\'s removal');
      const nh = await nexthops();
      assert.deepEqual(nh.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001], 'the balance group is without the removed uplink');
      assert.ok(nh.some((n) => n.id === 1002), 'the nexthop in use is kept');
      assert.ok(!(await ipJson<{ table?: string }>(NS, ['rule', 'show'])).some((r) => r.table === '1002'), 'the removed uplink\'s rules are gone');
      assert.ok(await reaches(), 'the other program\'s route still works');
      // Once the other program moves off, the nexthop goes (a nudge instead of waiting for the resync).
      await removeForeign();
      const hook = await uplinkd(NS, ['hook', '-c', CONFIG]);
      assert.equal(hook.code, 0, hook.stderr);
      await waitFor('nexthop 1002 deleted', async () => ((await nexthops()).some((n) => n.id === 1002) ? undefined : true), 10_000);
      await waitFor('in sync again', async () => ((await status()).inSync ? true : undefined), 10_000);
    } finally {
      await removeForeign();
      await stopDaemon(daemon, 'SIGTERM');
      daemon = undefined;
    }
  });

  it('a health failover takes the uplink out of the balance group and keeps its nexthop: the other program\'s route on it stays and works, down and back', async () => {
    await ipIn(PEER, ['addr', 'replace', `${TARGET}/32`, 'dev', 'lo']);
    await fs.writeFile(CONFIG, text([ISP1, ISP2_MONITORED]));
    daemon = await startDaemon(NS, CONFIG);
    const socket = path.join(STATE, 'control.sock');
    const status = () => queryDaemon(socket, { cmd: 'status' }) as Promise<DaemonStatus & { text: string }>;
    const members = async () => (await nexthops()).find((n) => n.id === 1000)?.group?.map((m) => m.id) ?? [];
    await waitFor('isp2 up and in the group', async () => ((await status()).facts.health.isp2 === 'up' && (await members()).includes(1002) ? true : undefined), 20_000);
    await addForeign();
    try {
      assert.ok(await reaches(), 'the other program\'s route works before the failover');
      await ipIn(PEER, ['addr', 'del', `${TARGET}/32`, 'dev', 'lo']);
      await waitFor('isp2 down and out of the group', async () => ((await status()).facts.health.isp2 === 'down' && !(await members()).includes(1002) ? true : undefined), 20_000);
      assert.deepEqual(await members(), [1001]);
      assert.ok((await nexthops()).some((n) => n.id === 1002), 'isp2\'s nexthop stays');
      assert.equal((await foreignRoute())?.nhid, 1002, 'the other program\'s route survives the failover');
      assert.ok(await reaches(), 'and still works: the path itself is fine, only uplinkd\'s target is gone');
      assert.equal((await status()).inSync, true, 'a kept nexthop of an unhealthy uplink is planned, not a leftover');
      await ipIn(PEER, ['addr', 'replace', `${TARGET}/32`, 'dev', 'lo']);
      await waitFor('isp2 back in the group', async () => ((await members()).includes(1002) ? true : undefined), 20_000);
      assert.equal((await foreignRoute())?.nhid, 1002, 'the route is still there after the recovery');
    } finally {
      await removeForeign();
      await stopDaemon(daemon, 'SIGTERM');
      daemon = undefined;
    }
  });
});
