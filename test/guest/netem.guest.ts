// Issue 9 scenario 3, run INSIDE the full-kernel guest (test/lab/guest.test.ts boots it): issue 10's
// health acceptance on a real path, one lab and one daemon at default monitoring (2 targets). isp1's
// provider gets, in turn: 150 ms each way with jitter (netem, a 300 ms RTT satellite-like link); 20 %
// random loss in each direction (netem) for 2 minutes (the probes are the traffic); a 2.5 s upload
// queue (tbf) saturated by bulk TCP uploads from the LAN host. The guest has no nftables for ip/inet,
// so the faults are qdiscs (lab/netem.ts) and the proof they are real is ping, tc's own counters
// and the RTT the daemon measured.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, sleep } from '../../lab/exec';
import { addSecondTarget, daemonStatus, defaultMembers, healthDaemonConfig, startMonitoredDaemon, verdictOf, waitForDefault, waitForVerdict } from '../../lab/health';
import { labDown } from '../../lab/lab';
import { bufferbloat, clearImpairments, impairProvider, LOSSY, SATELLITE } from '../../lab/netem';
import { openStream, startStreamServer, type Stream } from '../../lab/stream';
import { PROVIDER_BACKBONE_IF, PROVIDER_CUSTOMER_IF, type LabInfo, type LabUplink } from '../../lab/topology';
import { freshLab, NEEDS_ROOT } from '../lab/support';

const PREFIX = `ug${process.pid % 1000}n-`;
const WATCH_MS = 30_000;
const UP_MS = 60_000;
const LOSS_MS = 120_000;
const QUEUE_MS = 60_000;

describe('health under a real 300 ms RTT, real loss and a real upload queue (issue 9 scenario 3, issue 10 acceptance)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let isp1: LabUplink;
  let daemon: RunningDaemon | undefined;
  let socket: string;

  const logged = (from: number, re: RegExp) => daemon!.lines.slice(from).filter((l) => re.test(l));
  const transitions = (from: number) => logged(from, /event=health uplink=isp1 /).map((l) => /to=(\w+)/.exec(l)?.[1]).join(',') || 'none';
  /** Packets a qdisc on the provider's interface dropped (tc -s: "dropped N"). */
  const qdiscDropped = async (dev: string): Promise<number> => {
    const r = await inNs(lab.ns.isp1, 'tc', ['-s', 'qdisc', 'show', 'dev', dev]);
    return Number(/dropped (\d+)/.exec(r.stdout)?.[1] ?? NaN);
  };
  const streamVia = (address: string) => openStream(lab.ns.lan, lab.internetHost, address, undefined, UP_MS);
  /** Polls status once a second for `ms`; fails at the first `down` of isp1. */
  const watchIsp1 = async (ms: number) => {
    const seen = new Set<string>();
    let maxRtt = 0;
    let maxLoss = 0;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const s = await daemonStatus(socket);
      const verdict = String(s.facts.health.isp1);
      seen.add(verdict);
      maxRtt = Math.max(maxRtt, s.health.isp1?.rttMs ?? 0);
      maxLoss = Math.max(maxLoss, s.health.isp1?.lossPct ?? 0);
      assert.notEqual(verdict, 'down', `isp1 judged down: ${JSON.stringify(s.health.isp1)}`);
      await sleep(1_000);
    }
    return { seen: [...seen], maxRtt, maxLoss };
  };

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    await addSecondTarget(lab);
    await startStreamServer(lab.ns.inet);
    socket = path.join(lab.stateDir, 'control.sock');
    const config = path.join(lab.stateDir, 'health.yaml');
    daemon = await startMonitoredDaemon(lab, socket, config, healthDaemonConfig(lab, socket), UP_MS);
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
  });
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('with 300 ms RTT on isp1 (netem, ping proves it), default monitoring keeps isp1 up and in the default route for 30 s', async (t) => {
    // The path is really slow: ping from isp1's address (routed through isp1 by uplinkd's rule).
    await impairProvider(lab, 'isp1', SATELLITE);
    try {
      const r = await inNs(lab.ns.router, 'ping', ['-n', '-q', '-c', '3', '-i', '0.3', '-W', '3', '-I', lab.uplinks[0].address, lab.internetHost], { allowFail: true });
      const min = Number(/= ([\d.]+)\//.exec(r.stdout)?.[1]);
      const floor = 2 * (SATELLITE.delayMs! - SATELLITE.jitterMs!); // 280 ms: both directions at their shortest
      assert.ok(min >= floor, `ping min RTT ${min} ms through isp1 (expected at least ${floor}): ${r.stdout}`);
      const seen = new Set<string>();
      const end = Date.now() + WATCH_MS;
      while (Date.now() < end) {
        seen.add(String(await verdictOf(socket, 'isp1')));
        await sleep(500);
      }
      t.diagnostic(`isp1 verdicts seen: ${[...seen].join(', ')}`);
      assert.ok(!seen.has('down'), `isp1 went down on a slow but working path: ${[...seen].join(', ')}`);
      assert.ok(!daemon!.lines.some((l) => /event=health uplink=isp1 .*to=down/.test(l)), daemon!.lines.filter((l) => l.includes('event=health')).join('\n'));
      assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2']);
    } finally {
      await clearImpairments(lab, 'isp1');
    }
  });

  it('20 % random loss per direction on isp1 (netem) for 2 minutes: no false down', async (t) => {
    const from = daemon!.lines.length;
    let watched: Awaited<ReturnType<typeof watchIsp1>>;
    let dropped: number[];
    try {
      await impairProvider(lab, 'isp1', LOSSY);
      watched = await watchIsp1(LOSS_MS);
      dropped = [await qdiscDropped(PROVIDER_CUSTOMER_IF), await qdiscDropped(PROVIDER_BACKBONE_IF)];
    } finally {
      await clearImpairments(lab, 'isp1');
    }
    const line = `20 % loss, ${LOSS_MS / 1000} s: isp1 verdicts ${watched.seen.join(',')}, transitions ${transitions(from)}, daemon loss up to ${watched.maxLoss.toFixed(0)} %, netem dropped ${dropped.join(' down / ')} up`;
    t.diagnostic(line);
    process.stdout.write(`# ${line}\n`);
    // The fault was real in both directions, and the daemon saw it.
    assert.ok(dropped.every((n) => n > 0), `netem dropped packets each way: ${dropped.join(', ')}`);
    assert.ok(watched.maxLoss > 0, `the daemon saw loss (max ${watched.maxLoss} %)`);
    assert.deepEqual(logged(from, /event=health uplink=isp1 from=\S+ to=down/), []);
    assert.deepEqual(logged(from, /event=conntrack_cleared/), []);
    assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2']);
  });

  it('a 2.5 s upload queue (tbf at 400 kbit) saturated by 3 bulk uploads through isp1 for 60 s: degraded at most, never down, the uploads are not reset', async (t) => {
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    const from = daemon!.lines.length;
    const streams: Stream[] = [];
    let watched: Awaited<ReturnType<typeof watchIsp1>> | undefined;
    let dropped = NaN;
    try {
      for (let i = 0; i < 3; i++) streams.push(await streamVia(isp1.address));
      await bufferbloat(lab, 'isp1', 400, 2500);
      watched = await watchIsp1(QUEUE_MS);
      dropped = await qdiscDropped(PROVIDER_BACKBONE_IF);
      for (const s of streams) assert.equal(s.end(), undefined, `an upload ended: ${JSON.stringify(s.end())}`);
    } finally {
      await clearImpairments(lab, 'isp1');
      const ends = [];
      for (const s of streams) ends.push({ end: await s.stop(), sent: s.latest().sent });
      if (watched) {
        const line = `2.5 s queue, ${QUEUE_MS / 1000} s: isp1 verdicts ${watched.seen.join(',')}, transitions ${transitions(from)}, daemon mean rtt up to ${watched.maxRtt.toFixed(0)} ms, tbf dropped ${dropped}, uploads sent ${ends.map((e) => e.end.sent).join('/')} bytes`;
        t.diagnostic(line);
        process.stdout.write(`# ${line}\n`);
      }
      for (const { end } of ends) assert.equal(end.event, 'stopped', `an upload ended by itself: ${JSON.stringify(end)}`);
    }
    // The queue was real: the probes waited in it behind the uploads.
    assert.ok(watched!.maxRtt > 1000, `mean rtt up to ${watched!.maxRtt} ms`);
    assert.deepEqual(logged(from, /event=health uplink=isp1 from=\S+ to=down/), []);
    assert.deepEqual(logged(from, /event=conntrack_cleared/), []);
  });
});
