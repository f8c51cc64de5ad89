// Issue 9 scenario 2, run INSIDE the full-kernel guest (test/lab/guest.test.ts boots it): two
// real PPPoE sessions (pppoe-server in each provider, pppd in the router, the same peer address
// 10.64.0.1 on both) as `dhcp: true` uplinks ppp0 and ppp1. Split access and balancing over both
// sessions; a session ended by the provider is redialled (ppp0 comes back with a new ifindex) and
// `uplinkd run` follows the new address; how long it took (kernel event times, `ip -ts monitor`) is reported.
// Needs point-to-point uplinks (issue 8): without them uplinkd reports these uplinks `no-gateway`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { daemonConfig, startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { waitFor } from '../../lab/exec';
import { routesOfTable, rules } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import { endSessions, PPP_PEER, pppLink, pppoeUp } from '../../lab/pppoe';
import type { LabInfo } from '../../lab/topology';
import { flowsPerUplink, startTcpEcho, tcpProbe, tcpTally } from '../../lab/traffic';
import { assertAllReachable, binomialTolerance, NEEDS_ROOT, reachUplinks } from '../lab/support';

const PREFIX = `ug${process.pid % 1000}p-`;
const PORT = 8093;
const FLOWS = 200;
const FOLLOW_MS = 30_000; // generous bound for waiting; the follow time itself is reported from event times

describe('two real PPPoE uplinks with the same peer (issue 9, needs issue 8)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let daemon: RunningDaemon | undefined;

  before(async () => {
    await labDown(PREFIX);
    lab = await pppoeUp(PREFIX);
    await startTcpEcho(lab.ns.router, PORT);
    await startTcpEcho(lab.ns.inet, PORT + 1);
  });
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('pppd brought up ppp0 and ppp1, both `peer 10.64.0.1/32`; pppd added `default dev ppp0`', async () => {
    for (const u of lab.uplinks) {
      const l = await pppLink(lab.ns.router, u.interface);
      assert.equal(l?.peer, PPP_PEER, `${u.interface}: ${JSON.stringify(l)}`);
    }
    const def = (await routesOfTable(lab.ns.router, 'main')).find((r) => r.dst === 'default');
    assert.equal(def?.dev, 'ppp0');
    assert.equal(def?.gateway, undefined);
  });

  it('without uplinkd, the provider drops the replies of the session that is not the default', async () => {
    const reach = await reachUplinks(lab, PORT);
    assert.ok(reach.some((r) => !r.ping && r.tcpPeer === undefined), JSON.stringify(reach));
  });

  it('uplinkd run: ping and TCP reach both session addresses (split access)', async () => {
    const socket = path.join(lab.stateDir, 'control.sock');
    const config = path.join(lab.stateDir, 'daemon.yaml');
    await fs.writeFile(config, daemonConfig(lab, socket));
    daemon = await startDaemon(lab.ns.router, config);
    for (const u of lab.uplinks)
      await uplinkTable(lab, u.address, u.interface, FOLLOW_MS).catch((err: Error) => {
        // say what the daemon thinks of the uplinks (e.g. `no-gateway` without point-to-point support)
        throw new Error(`${err.message}\ndaemon log:\n${daemon!.lines.filter((l) => /uplink=|state=|reason=/.test(l)).slice(-12).join('\n')}`);
      });
    assertAllReachable(lab, await reachUplinks(lab, PORT));
  });

  it('LAN flows are balanced by weight (1:3) over both sessions', async (t) => {
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT + 1, { count: FLOWS, concurrency: 10, timeoutMs: 6000 });
    assert.equal(tally.failed, 0, JSON.stringify(tally.errors));
    const per = flowsPerUplink(tally, lab.uplinks);
    t.diagnostic(`flows per uplink: ${JSON.stringify(per)}`);
    assert.equal(per.isp1 + per.isp2, FLOWS, JSON.stringify(tally.seen));
    assert.ok(Math.abs(per.isp1 - FLOWS / 4) <= binomialTolerance(FLOWS, 0.25), JSON.stringify(per));
  });

  it('the provider ends the session; pppd redials (new ifindex) and the daemon follows the new address (time reported)', async (t) => {
    const u = lab.uplinks[0];
    const before = await pppLink(lab.ns.router, u.interface);
    assert.ok(before?.address);
    const monitor = startMonitor(lab.ns.router);
    try {
      await new Promise((r) => setTimeout(r, 500)); // the monitor is listening
      const ended = await endSessions(lab.ns.isp1);
      assert.ok(ended.length > 0, 'isp1 had no session to end');
      const now = await waitFor('ppp0 back with a new ifindex and an address', async () => {
        const l = await pppLink(lab.ns.router, u.interface);
        return l && l.ifindex !== before.ifindex && l.address ? l : undefined;
      }, 60_000, 200);
      const table = await uplinkTable(lab, now.address!, u.interface, FOLLOW_MS);
      await new Promise((r) => setTimeout(r, 500)); // the last events reach the monitor
      const events = monitor.lines();
      const addrAt = eventTime(events, (l) => !l.includes('Deleted') && new RegExp(`\\b${u.interface}\\s+inet ${esc(now.address!)} peer`).test(l));
      assert.ok(addrAt !== undefined, `no address event for ${now.address}:\n${events.join('\n')}`);
      const later = events.filter((l) => (lineTime(l) ?? 0) >= addrAt);
      const routeAt = eventTime(later, (l) => !l.includes('Deleted') && new RegExp(`^\\[[^\\]]+\\] default dev ${u.interface} table ${esc(String(table))}\\b`).test(l));
      const ruleAt = now.address === before.address ? addrAt : eventTime(later, (l) => !l.includes('Deleted') && new RegExp(`from ${esc(now.address!)} lookup`).test(l));
      assert.ok(routeAt !== undefined && ruleAt !== undefined, `no route/rule events after the address:\n${later.join('\n')}`);
      const followMs = Math.max(routeAt, ruleAt) - addrAt;
      t.diagnostic(`address ${before.address} -> ${now.address}, ifindex ${before.ifindex} -> ${now.ifindex}, followed in ${followMs.toFixed(0)} ms`);
      // The follow time is measured and reported, not asserted: a timed assertion fails on a loaded machine
      // (2.7 s was seen in a guest sharing 2 cores with other tests), not because the daemon is wrong.
      assert.equal(await tcpProbe(lab.ns.inet, now.address!, PORT, 5000), lab.internetHost, `TCP to the redialled ${now.address}`);
    } finally {
      monitor.stop();
    }
  });
});

/** Waits for `from <address> lookup T` and `default dev <ifname>` in table T; returns T. */
async function uplinkTable(lab: LabInfo, address: string, ifname: string, timeoutMs: number): Promise<string> {
  return waitFor(`rule from ${address} and default dev ${ifname} in its table`, async () => {
    const rule = (await rules(lab.ns.router)).find((r) => r.src === address && r.table !== undefined);
    if (!rule) return undefined;
    const def = (await routesOfTable(lab.ns.router, rule.table!)).find((r) => r.dst === 'default');
    return def?.dev === ifname ? String(rule.table) : undefined;
  }, timeoutMs, 200);
}

function startMonitor(ns: string): { lines(): string[]; stop(): void } {
  const child: ChildProcess = spawn('ip', ['-n', ns, '-ts', '-N', 'monitor', 'address', 'rule', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  return { lines: () => text.split('\n').filter(Boolean), stop: () => void child.kill('SIGTERM') };
}

/** ms since the epoch of an `ip -ts monitor` line ([2026-11-30T16:50:01.123456] ...), local time. */
function lineTime(line: string): number | undefined {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d+)\]/.exec(line);
  return m ? new Date(m[1]).getTime() + Number(`0.${m[2]}`) * 1000 : undefined;
}

function eventTime(lines: string[], match: (l: string) => boolean): number | undefined {
  const l = lines.find(match);
  return l === undefined ? undefined : lineTime(l);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
