// Issue 9 scenario 3, run INSIDE the full-kernel guest (test/lab/guest.test.ts boots it): issue 10's
// health acceptance on a real path, one lab and one daemon at default monitoring (2 targets). isp1's
// provider gets netem's 150 ms each way with jitter (a 300 ms RTT satellite-like link) while: the
// targets' probe counters run, its upstream is blackholed (with LAN traffic through it, and idle),
// the targets rate-limit ICMP, the only shared target dies. isp2's provider gets 20 % random loss per
// direction (netem) with the same delay, during the rate-limit soak (2 minutes in `npm test`;
// UPLINKD_GUEST_SOAK_S sets it, the guest-soak benchmark runs 5). Last, a 2.5 s upload queue (tbf)
// on isp1 saturated by bulk TCP uploads from the LAN host. The guest has no nftables for ip/inet,
// so the faults are routes, qdiscs (lab/netem.ts) and legacy iptables (lab/faults.ts), and
// the proof they are real is ping, tc's and iptables' own counters and the RTT the daemon measured.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UplinkdError } from '../../src/errors';
import { stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, sleep, waitFor } from '../../lab/exec';
import { blackholeUpstream, clearRateLimit, rateLimited, rateLimitIcmp, restoreUpstream, silenceTarget, unsilenceTarget, type ProviderName } from '../../lab/faults';
import {
  addSecondTarget, countProbesAtTargets, daemonStatus, defaultMembers, healthDaemonConfig, labTargets, probesAtTargets, SECOND_TARGET,
  startMonitoredDaemon, verdictOf, waitForDefault, waitForVerdict, type HealthConfigOptions,
} from '../../lab/health';
import { labDown } from '../../lab/lab';
import { bufferbloat, clearImpairments, impairProvider, LOSSY, SATELLITE } from '../../lab/netem';
import { openStream, startStreamServer, type Stream } from '../../lab/stream';
import { PROVIDER_BACKBONE_IF, PROVIDER_CUSTOMER_IF, type LabInfo, type LabUplink } from '../../lab/topology';
import { freshLab, NEEDS_ROOT } from '../lab/support';

const PREFIX = `ug${process.pid % 1000}n-`;
const WATCH_MS = 30_000;
const UP_MS = 60_000;
const QUEUE_MS = 60_000;
/** The rate-limit and loss soak; 2 minutes keeps the guest part of `npm test` short (docs/guest-lab.md). */
const SOAK_MS = soakMs(process.env.UPLINKD_GUEST_SOAK_S);
/** 20 % loss per direction on a 300 ms RTT path. */
const LOSSY_SATELLITE = { ...SATELLITE, ...LOSSY };

function soakMs(seconds: string | undefined): number {
  if (seconds === undefined) return 120_000;
  const s = Number(seconds);
  if (!Number.isInteger(s) || s < 1) throw new UplinkdError('usage', `UPLINKD_GUEST_SOAK_S must be a whole number of seconds, not '${seconds}'`);
  return s * 1000;
}

describe('health under a real 300 ms RTT, real loss and a real upload queue (issue 9 scenario 3, issue 10 acceptance)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let isp1: LabUplink;
  let isp2: LabUplink;
  let daemon: RunningDaemon | undefined;
  let socket: string;
  let config: string;

  const start = async (opts: HealthConfigOptions = {}) => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    daemon = undefined;
    // At debug level: a verdict the test did not expect comes with the suspicions, bursts and pauses before it.
    daemon = await startMonitoredDaemon(lab, socket, config, healthDaemonConfig(lab, socket, opts), UP_MS, 'debug');
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
  };
  const logged = (from: number, re: RegExp) => daemon!.lines.slice(from).filter((l) => re.test(l));
  const transitions = (from: number, uplink = 'isp1') => logged(from, new RegExp(`event=health uplink=${uplink} `)).map((l) => /to=(\w+)/.exec(l)?.[1]).join(',') || 'none';
  const say = (line: string) => process.stdout.write(`# ${line}\n`);
  /** Packets a qdisc on the provider's interface dropped (tc -s: "dropped N"). */
  const qdiscDropped = async (provider: ProviderName, dev: string): Promise<number> => {
    const r = await inNs(lab.ns[provider], 'tc', ['-s', 'qdisc', 'show', 'dev', dev]);
    return Number(/dropped (\d+)/.exec(r.stdout)?.[1] ?? NaN);
  };
  /**
   * Waits until both uplinks are out of `down` and in the default. `degraded` counts: a 300 ms RTT path is
   * degraded by the default degraded_rtt (250 ms) and kept, and stays so while its slow answers are in the window.
   */
  const waitForBoth = async () => {
    for (const u of ['isp1', 'isp2'])
      await waitFor(`${u} up or degraded`, async () => (['up', 'degraded'].includes(String(await verdictOf(socket, u))) ? true : undefined), UP_MS, 50);
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
  };
  const streamVia = (address: string) => openStream(lab.ns.lan, lab.internetHost, address, undefined, UP_MS);
  /** Polls status once a second for `ms`; fails at the first `down` of a watched uplink. */
  const watch = async (ms: number, uplinks: string[] = ['isp1']) => {
    const seen: Record<string, Set<string>> = Object.fromEntries(uplinks.map((u) => [u, new Set<string>()]));
    const maxRtt: Record<string, number> = {};
    const maxLoss: Record<string, number> = {};
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const s = await daemonStatus(socket);
      for (const u of uplinks) {
        const verdict = String(s.facts.health[u]);
        seen[u].add(verdict);
        maxRtt[u] = Math.max(maxRtt[u] ?? 0, s.health[u]?.rttMs ?? 0);
        maxLoss[u] = Math.max(maxLoss[u] ?? 0, s.health[u]?.lossPct ?? 0);
        if (verdict === 'down') {
          const why = daemon!.lines.filter((l) => l.includes(` uplink=${u} `) && /event=health/.test(l)).slice(-40);
          assert.fail(`${u} judged down: ${JSON.stringify(s.health[u])}\nits last health log lines:\n${why.join('\n')}`);
        }
      }
      await sleep(1_000);
    }
    return { seen: Object.fromEntries(uplinks.map((u) => [u, [...seen[u]].join(',')])), maxRtt, maxLoss };
  };
  /** Blackholes isp1's upstream; resolves with ms until isp1 left the default group (polled every 10 ms), and the members then. */
  const timeOutOfDefault = async (): Promise<{ ms: number; members: string[] }> => {
    const t0 = performance.now();
    await blackholeUpstream(lab, 'isp1');
    let members: string[] = [];
    await waitFor('isp1 out of the default', async () => ((members = await defaultMembers(lab)).includes('isp1') ? undefined : true), 30_000, 10);
    return { ms: performance.now() - t0, members };
  };

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    assert.equal(lab.firewall, 'iptables', 'the guest lab runs on legacy iptables');
    isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    isp2 = lab.uplinks.find((u) => u.name === 'isp2')!;
    await addSecondTarget(lab);
    await startStreamServer(lab.ns.inet);
    socket = path.join(lab.stateDir, 'control.sock');
    config = path.join(lab.stateDir, 'health.yaml');
    await start();
  });
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('with 300 ms RTT on isp1 (netem, ping proves it), default monitoring keeps isp1 up and in the default for 30 s, at most 1 probe/s per target per uplink (iptables counters at the targets)', async (t) => {
    // The path is really slow: ping from isp1's address (routed through isp1 by uplinkd's rule).
    await impairProvider(lab, 'isp1', SATELLITE);
    try {
      const r = await inNs(lab.ns.router, 'ping', ['-n', '-q', '-c', '3', '-i', '0.3', '-W', '3', '-I', isp1.address, lab.internetHost], { allowFail: true });
      const min = Number(/= ([\d.]+)\//.exec(r.stdout)?.[1]);
      const floor = 2 * (SATELLITE.delayMs! - SATELLITE.jitterMs!); // 280 ms: both directions at their shortest
      assert.ok(min >= floor, `ping min RTT ${min} ms through isp1 (expected at least ${floor}): ${r.stdout}`);
      const sources = [isp1.address, isp2.address];
      // The window runs from before the counters exist to after they are read: an upper bound of their time.
      const t0 = performance.now();
      await countProbesAtTargets(lab, sources);
      const seen = new Set<string>();
      const end = Date.now() + WATCH_MS;
      while (Date.now() < end) {
        seen.add(String(await verdictOf(socket, 'isp1')));
        await sleep(500);
      }
      const counts = await probesAtTargets(lab, sources);
      const seconds = (performance.now() - t0) / 1000;
      const rates = Object.entries(counts).map(([k, n]) => `${k} ${n} (${(n / seconds).toFixed(2)}/s)`);
      t.diagnostic(`isp1 verdicts seen: ${[...seen].join(', ')}`);
      say(`steady state at the targets, ${seconds.toFixed(1)} s: ${rates.join(', ')}`);
      assert.ok(!seen.has('down'), `isp1 went down on a slow but working path: ${[...seen].join(', ')}`);
      assert.ok(!daemon!.lines.some((l) => /event=health uplink=isp1 .*to=down/.test(l)), daemon!.lines.filter((l) => l.includes('event=health')).join('\n'));
      assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2']);
      // Every uplink probes every target (the counters work), and politely: one round may fall on either edge of the window.
      assert.equal(Object.keys(counts).length, sources.length * labTargets(lab).length, JSON.stringify(counts));
      for (const [pair, n] of Object.entries(counts)) {
        assert.ok(n > 0, `no probe of ${pair} counted`);
        assert.ok(n <= Math.ceil(seconds) + 1, `${pair}: ${n} echo requests in ${seconds.toFixed(1)} s`);
      }
    } finally {
      await clearImpairments(lab, 'isp1');
    }
  });

  it('with 300 ms RTT on isp1, a blackhole behind it: out of the default with LAN traffic flowing through it and idle, isp2 kept, back after the repair', async () => {
    await impairProvider(lab, 'isp1', SATELLITE);
    try {
      const from = daemon!.lines.length;
      const stream = await streamVia(isp1.address);
      let withTraffic: Awaited<ReturnType<typeof timeOutOfDefault>>;
      try {
        await waitFor('the stream to flow', async () => (stream.latest().received > 50_000 ? true : undefined), 30_000, 100);
        withTraffic = await timeOutOfDefault();
      } finally {
        await restoreUpstream(lab, 'isp1');
        await stream.stop();
      }
      await waitForBoth();
      const idleFrom = daemon!.lines.length;
      await sleep(3_000);
      let idle: Awaited<ReturnType<typeof timeOutOfDefault>>;
      try {
        idle = await timeOutOfDefault();
      } finally {
        await restoreUpstream(lab, 'isp1');
      }
      say(`blackhole behind isp1 at 300 ms RTT: out of the default ${withTraffic.ms.toFixed(0)} ms with traffic, ${idle.ms.toFixed(0)} ms idle`);
      for (const l of logged(from, /event=health uplink=isp1 from=\S+ to=down/)) say(l);
      assert.deepEqual(withTraffic.members, ['isp2'], 'with traffic: the default keeps isp2');
      assert.deepEqual(idle.members, ['isp2'], 'idle: the default keeps isp2');
      assert.equal(logged(from, /event=health uplink=isp1 from=\S+ to=down/).length, 2, `isp1 went down once each time: ${transitions(from)}`);
      assert.equal(logged(idleFrom, /event=health uplink=isp1 from=\S+ to=down/).length, 1, `idle: ${transitions(idleFrom)}`);
      assert.deepEqual(logged(from, /event=health uplink=isp2 from=\S+ to=down/), []);
      await waitForBoth();
    } finally {
      await clearImpairments(lab, 'isp1');
    }
  });

  it(`targets rate-limit ICMP to 2/s per source (iptables hashlimit) behind a 300 ms RTT isp1, and 20 % loss per direction at 300 ms RTT on isp2, ${SOAK_MS / 1000} s at once: no false down; then an outage of isp1 (3 s or more) is seen and isp1 is back within 10 s of the repair`, async (t) => {
    await waitForBoth();
    const from = daemon!.lines.length;
    try {
      await impairProvider(lab, 'isp1', SATELLITE);
      await impairProvider(lab, 'isp2', LOSSY_SATELLITE);
      await rateLimitIcmp(lab, 2, isp1.network);
      // The limit is real: 10 echo requests at 10/s from isp1's address, on top of the daemon's probes.
      const ping = await inNs(lab.ns.router, 'ping', ['-n', '-q', '-c', '10', '-i', '0.1', '-W', '2', '-I', isp1.address, lab.internetHost], { allowFail: true });
      const answered = Number(/(\d+) received/.exec(ping.stdout)?.[1]);
      const limitedByPing = await rateLimited(lab);
      assert.ok(answered < 10 && limitedByPing > 0, `the limiter let ${answered} of 10 through and dropped ${limitedByPing}: ${ping.stdout}`);

      const watched = await watch(SOAK_MS, ['isp1', 'isp2']);
      const dropped = [await qdiscDropped('isp2', PROVIDER_CUSTOMER_IF), await qdiscDropped('isp2', PROVIDER_BACKBONE_IF)];
      const limited = (await rateLimited(lab)) - limitedByPing;
      const line = `rate limit + 20 % loss, ${SOAK_MS / 1000} s: isp1 verdicts ${watched.seen.isp1}, transitions ${transitions(from)}; isp2 verdicts ${watched.seen.isp2}, transitions ${transitions(from, 'isp2')}, daemon loss up to ${watched.maxLoss.isp2.toFixed(0)} %, netem dropped ${dropped.join(' down / ')} up; the limiter dropped ${limited} of the daemon's requests`;
      t.diagnostic(line);
      say(line);
      // The loss was real in both directions, and the daemon saw it.
      assert.ok(dropped.every((n) => n > 0), `netem dropped packets each way: ${dropped.join(', ')}`);
      assert.ok(watched.maxLoss.isp2 > 0, `the daemon saw loss on isp2 (max ${watched.maxLoss.isp2} %)`);
      assert.deepEqual(logged(from, /event=health uplink=isp\d from=\S+ to=down/), [], 'no false down logged');
      assert.deepEqual(logged(from, /event=conntrack_cleared/), []);
      assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2']);

      // A real outage of isp1 of 3 s at least, while its targets still rate-limit and the path is still slow.
      // It lasts until isp1 is judged down: on this 300 ms path in a loaded guest idle detection can take
      // longer than 3 s (the blackhole test prints it); what is checked here is the recovery under the limit.
      const outageFrom = performance.now();
      await blackholeUpstream(lab, 'isp1');
      await sleep(3_000);
      await waitFor('isp1 judged down for the outage', async () => (logged(from, /event=health uplink=isp1 from=\S+ to=down/).length > 0 ? true : undefined), 30_000, 50);
      await restoreUpstream(lab, 'isp1');
      const repaired = performance.now();
      const outage = repaired - outageFrom;
      const left = () => Math.max(0, 10_000 - (performance.now() - repaired));
      // Back means out of `down` (on this 300 ms path: `degraded`, kept in the default) and in the default again.
      let back = NaN;
      await waitFor('isp1 back within 10 s of the repair', async () => (logged(from, /event=health uplink=isp1 from=down to=\w+/).length > 0 ? (back = performance.now() - repaired) : undefined), left(), 50);
      await waitForDefault(lab, ['isp1', 'isp2'], left());
      say(`after an outage of ${(outage / 1000).toFixed(1)} s (3 s, or until judged down) behind a 2/s limit at 300 ms RTT, isp1 was out of down ${back.toFixed(0)} ms after the repair and seen in the default at ${(performance.now() - repaired).toFixed(0)} ms (${transitions(from)})`);
    } finally {
      await clearRateLimit(lab);
      await restoreUpstream(lab, 'isp1');
      await clearImpairments(lab, 'isp1');
      await clearImpairments(lab, 'isp2');
    }
    await waitForBoth();
  });

  it('a 2.5 s upload queue (tbf at 400 kbit) saturated by 3 bulk uploads through isp1 for 60 s: degraded at most, never down, the uploads are not reset', async (t) => {
    await waitForBoth();
    const from = daemon!.lines.length;
    const streams: Stream[] = [];
    let watched: Awaited<ReturnType<typeof watch>> | undefined;
    let dropped = NaN;
    try {
      for (let i = 0; i < 3; i++) streams.push(await streamVia(isp1.address));
      await bufferbloat(lab, 'isp1', 400, 2500);
      watched = await watch(QUEUE_MS);
      dropped = await qdiscDropped('isp1', PROVIDER_BACKBONE_IF);
      for (const s of streams) assert.equal(s.end(), undefined, `an upload ended: ${JSON.stringify(s.end())}`);
    } finally {
      // The uploads are stopped while the queue is still in place: removing the qdisc drops the 2.5 s of packets it
      // holds at once, and what that does to an upload still running is the lab's doing, not a verdict of uplinkd's.
      const ends = [];
      for (const s of streams) ends.push({ end: await s.stop(), sent: s.latest().sent });
      await clearImpairments(lab, 'isp1');
      if (watched) {
        const line = `2.5 s queue, ${QUEUE_MS / 1000} s: isp1 verdicts ${watched.seen.isp1}, transitions ${transitions(from)}, daemon mean rtt up to ${watched.maxRtt.isp1.toFixed(0)} ms, tbf dropped ${dropped}, uploads sent ${ends.map((e) => e.end.sent).join('/')} bytes`;
        t.diagnostic(line);
        say(line);
      }
      for (const { end } of ends) assert.equal(end.event, 'stopped', `an upload ended by itself: ${JSON.stringify(end)}`);
    }
    // The queue was real: the probes waited in it behind the uploads.
    assert.ok(watched!.maxRtt.isp1 > 1000, `mean rtt up to ${watched!.maxRtt.isp1} ms`);
    assert.deepEqual(logged(from, /event=health uplink=isp1 from=\S+ to=down/), []);
    assert.deepEqual(logged(from, /event=conntrack_cleared/), []);
  });

  it('with 300 ms RTT on isp1, the only target, shared by both uplinks, stops answering: LAN traffic keeps flowing (last resort), status says why', async () => {
    await start({ targets: [SECOND_TARGET] });
    const from = daemon!.lines.length;
    await impairProvider(lab, 'isp1', SATELLITE);
    const stream = await streamVia(isp1.address);
    try {
      await silenceTarget(lab, SECOND_TARGET);
      await waitForVerdict(socket, 'isp1', 'down', UP_MS);
      await waitForVerdict(socket, 'isp2', 'down', UP_MS);
      const s = await daemonStatus(socket);
      say(`shared target silent: ${s.warnings.filter((w) => w.startsWith('LAST RESORT')).join(' ')}; isp1 ${s.health.isp1?.reason ?? ''}`);
      assert.ok(s.uplinks.every((u) => u.inDefault && u.lastResort === true), JSON.stringify(s.uplinks));
      assert.ok(s.warnings.some((w) => w.startsWith('LAST RESORT: every uplink is judged down')), s.warnings.join('\n'));
      assert.match(s.text, /LAST RESORT/);
      assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2'], 'the default keeps both');
      // The stream through isp1 keeps receiving: the target is silent, not the path; its connections are kept.
      assert.deepEqual(logged(from, /event=conntrack_cleared uplink=isp1/), [], 'no connection of isp1 cleared');
      const received = stream.latest().received;
      await waitFor('the stream to keep flowing', async () => (stream.latest().received > received ? true : undefined), 10_000, 100);
      assert.equal(stream.end(), undefined, 'the stream through isp1 was not reset');
    } finally {
      await unsilenceTarget(lab);
      await stream.stop();
      await clearImpairments(lab, 'isp1');
    }
    await waitForBoth();
  });
});
