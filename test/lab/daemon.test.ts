// Issue 3 acceptance: `uplinkd run` in the lab's router follows DHCP renumbering (dhclient,
// then udhcpc), link down/up, restores drift without touching foreign rules, survives
// kill -9 without a gap or duplicates, and keeps its state on a broken SIGHUP reload.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryDaemon } from '../../src/daemon/control-client';
import type { DaemonStatus } from '../../src/daemon/daemon';
import { daemonConfig, startDaemon, stopDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { globalAddress, startDhcpClient } from '../../lab/dhcp';
import { ipIn, ipJson, waitFor } from '../../lab/exec';
import { routingState, rules, routesOfTable, uplinkd, type RuleJson } from '../../lab/inspect';
import { dhclient, renumberProvider } from '../../lab/renumber';
import { labDown } from '../../lab/lab';
import { PROVIDERS, type LabInfo, type Provider } from '../../lab/topology';
import { ping } from '../../lab/traffic';
import { parseLine } from '../../src/log';
import { freshLab, NEEDS_ROOT } from './support';

// Unique per run: the same file may run twice at once (several people building in parallel).
const PREFIX = `uld${process.pid % 100000}-`;
const ISP2 = PROVIDERS.find((p) => p.name === 'isp2')!;
const UPLINKD_PROTO = '117';

describe('uplinkd run (issue 3)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let config: string;
  let socket: string;
  let daemon: RunningDaemon | undefined;
  /** The provider isp2 as it is now (the renumbering tests change its gateway and range). */
  let isp2: Provider = ISP2;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'dhcp', dhcpClient: 'dhclient' });
    socket = path.join(lab.stateDir, 'control.sock');
    config = path.join(lab.stateDir, 'daemon.yaml');
    await fs.writeFile(config, daemonConfig(lab, socket));
    daemon = await startDaemon(lab.ns.router, config);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('adopts the lab and routes the DHCP uplink; the internet host reaches both uplink addresses', async () => {
    const addr = lab.uplinks.find((u) => u.name === 'isp2')!.address;
    await waitForRule(lab, (r) => r.src === addr && r.table === '1002');
    assert.equal(await ping(lab.ns.inet, addr, { count: 2, waitSec: 1 }), true);
    assert.equal(await ping(lab.ns.inet, lab.uplinks.find((u) => u.name === 'isp1')!.address, { count: 2, waitSec: 1 }), true);
    const status = (await queryDaemon(socket, { cmd: 'status' })) as DaemonStatus & { text: string };
    assert.equal(status.uplinks.find((u) => u.name === 'isp2')?.state, 'ready');
    assert.match(status.text, /daemon: running/);
  });

  it('follows a renumbered dhclient lease (new address and gateway): rule and table follow, the stale rule goes', async () => {
    const old = (await globalAddress(lab.ns.router, 'if2'))!;
    await dhclient(lab, 'if2', ['-r']); // release and stop the running client
    isp2 = await renumberProvider(lab, isp2, { gateway: '203.0.113.254', range: ['203.0.113.200', '203.0.113.210'] });
    const fresh = await startDhcpClient(lab.ns.router, 'dhclient', 'if2', lab.stateDir);
    assert.notEqual(fresh, old);
    await assertFollowed(lab, fresh, old, isp2.gateway);
    assert.ok(daemon!.lines.some((l) => /event=apply/.test(l) && l.includes(fresh) && /cause=/.test(l)), 'changes logged with a cause');
  });

  it('follows a renumbered udhcpc lease the same way', async () => {
    const old = (await globalAddress(lab.ns.router, 'if2'))!;
    await dhclient(lab, 'if2', ['-r']);
    isp2 = await renumberProvider(lab, isp2, { gateway: '203.0.113.253', range: ['203.0.113.220', '203.0.113.230'] });
    const fresh = await startDhcpClient(lab.ns.router, 'udhcpc', 'if2', lab.stateDir);
    assert.notEqual(fresh, old);
    await assertFollowed(lab, fresh, old, isp2.gateway);

    // Renumber again while udhcpc keeps running: release (USR2), then ask anew (USR1).
    isp2 = await renumberProvider(lab, isp2, { gateway: '203.0.113.252', range: ['203.0.113.240', '203.0.113.250'] });
    // udhcpc writes its pid file once it has gone to the background.
    const pidFile = path.join(lab.stateDir, 'udhcpc.if2.pid');
    const pid = await waitFor('udhcpc pid file', async () => Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim()) || undefined, 5_000, 50);
    process.kill(pid, 'SIGUSR2');
    await waitFor('udhcpc released its address', async () => ((await globalAddress(lab.ns.router, 'if2')) === undefined ? true : undefined), 10_000);
    process.kill(pid, 'SIGUSR1');
    const third = await waitFor('a new udhcpc lease', () => globalAddress(lab.ns.router, 'if2'), 20_000);
    await assertFollowed(lab, third, fresh, isp2.gateway);
  });

  it('link down on one uplink takes it out of the default route; link up brings it back', async () => {
    const members = async () => {
      const nh = await ipJson<{ id: number; group?: { id: number }[] }>(lab.ns.router, ['nexthop', 'show', 'id', '1000']).catch(() => []);
      return (nh[0]?.group ?? []).map((m) => m.id).sort();
    };
    await waitFor('both uplinks in the default', async () => ((await members()).join() === '1001,1002' ? true : undefined), 5_000);
    await ipIn(lab.ns.router, ['link', 'set', 'dev', 'if1', 'down']);
    await waitFor('isp1 out of the default', async () => ((await members()).join() === '1002' ? true : undefined), 3_000);
    await ipIn(lab.ns.router, ['link', 'set', 'dev', 'if1', 'up']);
    await waitFor('isp1 back in the default', async () => ((await members()).join() === '1001,1002' ? true : undefined), 5_000);
  });

  // How fast the restoration comes is measured by the benchmarks, not asserted here.
  it('restores a deleted owned rule and a flushed owned table; a foreign rule is untouched', async () => {
    await settled(lab);
    const before = await routingState(lab.ns.router);
    const isp1Addr = lab.uplinks.find((u) => u.name === 'isp1')!.address;
    await ipIn(lab.ns.router, ['rule', 'add', 'from', '192.0.2.99', 'lookup', '77', 'priority', '10150']);
    await ipIn(lab.ns.router, ['rule', 'del', 'from', isp1Addr, 'lookup', '1001', 'priority', '10100']);
    await ipIn(lab.ns.router, ['route', 'flush', 'table', '1001']);
    await waitFor('the rule is back', async () => ((await rules(lab.ns.router)).some((r) => r.src === isp1Addr && r.table === '1001') ? true : undefined), 10_000, 20);
    await waitFor('table 1001 is back', async () => ((await routesOfTable(lab.ns.router, 1001)).length === tableSize(before, '1001') ? true : undefined), 10_000, 20);
    const foreign = (await rules(lab.ns.router)).filter((r) => r.src === '192.0.2.99');
    assert.equal(foreign.length, 1, 'the foreign rule is untouched');
    await ipIn(lab.ns.router, ['rule', 'del', 'from', '192.0.2.99', 'lookup', '77', 'priority', '10150']);
    await settled(lab);
    assert.deepEqual(owned(await routingState(lab.ns.router)), owned(before));
    assert.ok(daemon!.lines.some((l) => /event=apply/.test(l) && /drift/.test(l)), `the restoration is logged as drift:\n${daemon!.lines.join('\n')}`);
  });

  it('kill -9 and restart adopts what is there: identical rules and routes, no change applied', async () => {
    await settled(lab);
    const before = await routingState(lab.ns.router);
    await stopDaemon(daemon!, 'SIGKILL');
    daemon = undefined;
    assert.deepEqual(owned(await routingState(lab.ns.router)), owned(before), 'routing stays while the daemon is gone');
    daemon = await startDaemon(lab.ns.router, config); // the stale control socket is replaced
    await settled(lab);
    assert.deepEqual(await routingState(lab.ns.router), before);
    const applies = daemon.lines.filter((l) => /event=apply /.test(l));
    assert.deepEqual(applies, [], 'no flush, no re-add');
  });

  it('SIGHUP with a broken file keeps the daemon and its state, and logs the check error', async () => {
    await settled(lab);
    const before = await routingState(lab.ns.router);
    const good = await fs.readFile(config, 'utf8');
    await fs.writeFile(config, good.replace('weight: 3', 'weight: lots'));
    try {
      daemon!.child.kill('SIGHUP');
      const line = await waitForLine(daemon!, /event=reload-rejected/, 5_000);
      assert.match(parseLine(line).error, new RegExp(`${escape(config)}:\\d+:\\d+: uplinks\\[1\\]\\.weight`));
      assert.equal(daemon!.child.exitCode, null, 'still running');
      assert.deepEqual(await routingState(lab.ns.router), before);
      await assert.rejects(queryDaemon(socket, { cmd: 'reload' }), /weight/);
    } finally {
      await fs.writeFile(config, good);
    }
    const reload = await uplinkd(lab.ns.router, ['reload', '-c', config]);
    assert.equal(reload.code, 0, reload.stderr);
    assert.equal(((await queryDaemon(socket, { cmd: 'status' })) as DaemonStatus).uplinks.length, 2);
  });

  it('uplinkd hook nudges a resync with its cause; uplinkd status shows the live daemon', async () => {
    const hook = await uplinkd(lab.ns.router, ['hook', '-c', config, '--cause', 'dhclient RENEW on if2']);
    assert.equal(hook.code, 0, hook.stderr);
    await waitFor('the nudged cycle', async () => {
      const s = (await queryDaemon(socket, { cmd: 'status' })) as DaemonStatus;
      return s.lastCycle?.causes.includes('dhclient RENEW on if2') ? true : undefined;
    }, 3_000, 20);
    const status = await uplinkd(lab.ns.router, ['status', '-c', config]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /daemon: running/);
    assert.match(status.stdout, /isp2\s+if2/);
  });
});

async function waitForRule(lab: LabInfo, match: (r: RuleJson) => boolean, timeoutMs = 5_000): Promise<void> {
  await waitFor('rule', async () => ((await rules(lab.ns.router)).some(match) ? true : undefined), timeoutMs, 50);
}

/** The daemon moved the DHCP uplink to `fresh` via `gateway`, the old rule is gone, and traffic to it works. */
async function assertFollowed(lab: LabInfo, fresh: string, old: string, gateway: string): Promise<void> {
  await waitForRule(lab, (r) => r.src === fresh && r.table === '1002', 10_000);
  await waitFor(`table 1002 default via ${gateway}`, async () => {
    const def = (await routesOfTable(lab.ns.router, 1002)).find((r) => r.dst === 'default');
    return def?.gateway === gateway ? true : undefined;
  }, 10_000, 50);
  await waitFor('the stale rule is gone', async () => ((await rules(lab.ns.router)).some((r) => r.src === old) ? undefined : true), 5_000, 50);
  assert.equal(await ping(lab.ns.inet, fresh, { count: 2, waitSec: 1 }), true, `ping ${fresh} from the internet host`);
}

/** Waits until two reads of the routing state a little apart are equal (the daemon is idle). */
async function settled(lab: LabInfo): Promise<void> {
  let last = JSON.stringify(await routingState(lab.ns.router));
  await waitFor('routing to settle', async () => {
    await new Promise((r) => setTimeout(r, 150));
    const now = JSON.stringify(await routingState(lab.ns.router));
    const same = now === last;
    last = now;
    return same ? true : undefined;
  }, 5_000, 0);
}

type State = Awaited<ReturnType<typeof routingState>>;

/** uplinkd's rules, routes and nexthops only, sorted (a restored rule goes after others of its priority). */
function owned(s: State): State {
  const mine = (o: unknown) => String((o as { protocol?: unknown }).protocol) === UPLINKD_PROTO;
  const sorted = (xs: unknown[]) => xs.filter(mine).map((x) => JSON.stringify(x)).sort();
  return { rules: sorted(s.rules), routes: sorted(s.routes), nexthops: sorted(s.nexthops) };
}

function tableSize(s: State, table: string): number {
  return s.routes.filter((r) => String((r as { table?: unknown }).table) === table).length;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
