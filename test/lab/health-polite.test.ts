// Issue 10 acceptance: health monitoring that is fast, polite and never the cause of an outage,
// with real traffic in the lab (default monitor settings, targets 192.0.2.80 and 192.0.2.53 on the
// internet host). Times are awaited with generous bounds and printed (`# ...`); the benchmarks
// measure them (docs/benchmarks.md).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { sleep, waitFor } from '../../lab/exec';
import {
  blackholeUpstream, clearLoss, clearRateLimit, clearUploadQueue, lossDropped, randomLoss, rateLimitIcmp, rateLimited,
  restoreUpstream, silenceTarget, unsilenceTarget, uploadQueue,
} from '../../lab/faults';
import {
  addSecondTarget, countProbes, daemonStatus, defaultMembers, healthDaemonConfig, startMonitoredDaemon, lanFlows, probeCount, SECOND_TARGET,
  waitForDefault, waitForVerdict, type HealthConfigOptions,
} from '../../lab/health';
import { labDown } from '../../lab/lab';
import { openStream, startStreamServer, type Stream } from '../../lab/stream';
import type { LabInfo, LabUplink } from '../../lab/topology';
import { startTcpEcho } from '../../lab/traffic';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `uh1${process.pid % 1000}-`;
const UP_MS = 30_000;
const FLOWS = 20;
/** The two soaks of the issue (rate limiting, 20 % loss) run at once, 5 minutes. */
const SOAK_MS = 300_000;

describe('health: fast, polite, never the cause of an outage (issue 10)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let socket: string;
  let config: string;
  let daemon: RunningDaemon | undefined;
  let isp1: LabUplink;

  const start = async (opts: HealthConfigOptions = {}) => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    daemon = undefined;
    daemon = await startMonitoredDaemon(lab, socket, config, healthDaemonConfig(lab, socket, opts), UP_MS);
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
  };
  /** Blackholes isp1's upstream; resolves with ms until isp1 left the default group (polled every 10 ms). */
  const timeOutOfDefault = async (): Promise<number> => {
    const t0 = performance.now();
    await blackholeUpstream(lab, 'isp1');
    await waitFor('isp1 out of the default', async () => ((await defaultMembers(lab)).includes('isp1') ? undefined : true), 15_000, 10);
    return performance.now() - t0;
  };
  const streamVia = (address: string) => openStream(lab.ns.lan, lab.internetHost, address);
  const logged = (from: number, re: RegExp) => daemon!.lines.slice(from).filter((l) => re.test(l));

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'dhcp', dhcpClient: 'dhclient' });
    isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    await addSecondTarget(lab);
    await startTcpEcho(lab.ns.inet);
    await startStreamServer(lab.ns.inet);
    socket = path.join(lab.stateDir, 'control.sock');
    config = path.join(lab.stateDir, 'health.yaml');
    await start();
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    if (lab) await labDown(PREFIX);
  });

  it('steady state, default settings: at most 1 probe per second per target (nft counters at the provider)', async () => {
    await countProbes(lab, 'isp1', isp1.address);
    const t0 = performance.now();
    await sleep(20_000);
    const c = await probeCount(lab, 'isp1');
    const seconds = (performance.now() - t0) / 1000;
    const perTarget = c.requests / 2 / seconds;
    process.stdout.write(`# steady state: ${c.requests} echo requests to 2 targets in ${seconds.toFixed(1)} s = ${perTarget.toFixed(2)}/s per target\n`);
    assert.ok(c.requests > 0, 'probes were counted');
    // One round may fall on either edge of the window.
    assert.ok(c.requests <= 2 * Math.ceil(seconds) + 2, `${c.requests} requests in ${seconds} s`);
  });

  it('blackhole behind isp1 with LAN traffic flowing through it: out of the default fast; idle: within a few seconds', async () => {
    const stream = await streamVia(isp1.address);
    let withTraffic: number;
    try {
      await waitFor('the stream to flow', async () => (stream.latest().received > 50_000 ? true : undefined), 10_000, 100);
      withTraffic = await timeOutOfDefault();
    } finally {
      await restoreUpstream(lab, 'isp1');
      await stream.stop();
    }
    const from = daemon!.lines.length;
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
    await sleep(3_000);
    let idle: number;
    try {
      idle = await timeOutOfDefault();
    } finally {
      await restoreUpstream(lab, 'isp1');
    }
    process.stdout.write(`# out of the default: ${withTraffic.toFixed(0)} ms with traffic, ${idle.toFixed(0)} ms idle\n`);
    for (const l of logged(0, /event=health uplink=isp1 from=up to=down/)) process.stdout.write(`# ${l}\n`);
    // Generous but meaningful (mwan3's defaults take a minute); the targets (1 s, 3 s) are measured by the benchmark.
    assert.ok(withTraffic < 3_000, `with traffic: ${withTraffic} ms`);
    assert.ok(idle < 6_000, `idle: ${idle} ms`);
    assert.ok(logged(from, /event=health uplink=isp1 from=up to=down why="\d+ probe rounds .* nothing answered for/).length === 1, 'idle: the reason says nothing answered');
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    await waitForDefault(lab, ['isp1', 'isp2'], UP_MS);
  });

  it('targets rate-limiting ICMP to 2/s per source (isp1) and 20 % loss per direction (isp2), 5 min at once: no false down; then a 3 s outage of isp1 is seen and repaired within 10 s', async () => {
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    await waitForVerdict(socket, 'isp2', 'up', UP_MS);
    const from = daemon!.lines.length;
    await rateLimitIcmp(lab, 2, isp1.network);
    await randomLoss(lab, 'isp2', 20);
    const seen = { isp1: new Set<string>(), isp2: new Set<string>() };
    try {
      const until = Date.now() + SOAK_MS;
      while (Date.now() < until) {
        const s = await daemonStatus(socket);
        seen.isp1.add(s.facts.health.isp1 ?? 'absent');
        seen.isp2.add(s.facts.health.isp2 ?? 'absent');
        await sleep(1_000);
      }
      assert.ok((await lossDropped(lab, 'isp2')) > 0, 'the loss fault dropped packets');
      process.stdout.write(`# soak: rate limit dropped ${await rateLimited(lab)} requests; isp1 states ${[...seen.isp1]}, isp2 states ${[...seen.isp2]}\n`);
      for (const l of logged(from, /event=health /)) process.stdout.write(`# ${l}\n`);
      assert.deepEqual(logged(from, /event=health uplink=isp\d from=\S+ to=down/), [], 'no false down logged');
      assert.ok(!seen.isp1.has('down') && !seen.isp2.has('down'));

      // A real 3 s outage of isp1, while its targets still rate-limit.
      await blackholeUpstream(lab, 'isp1');
      await sleep(3_000);
      const wentDown = logged(from, /event=health uplink=isp1 from=\S+ to=down/).length > 0;
      await restoreUpstream(lab, 'isp1');
      const repaired = performance.now();
      if (!wentDown) await waitForVerdict(socket, 'isp1', 'down', 2_000);
      await waitFor('isp1 back up', async () => (logged(from, /event=health uplink=isp1 from=down to=up/).length > 0 ? true : undefined), 10_000, 50);
      process.stdout.write(`# after a 3 s outage isp1 was back ${(performance.now() - repaired).toFixed(0)} ms after the repair\n`);
    } finally {
      await clearRateLimit(lab);
      await clearLoss(lab, 'isp2');
      await restoreUpstream(lab, 'isp1');
    }
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
  });

  it('upload saturated with a 2.5 s queue through isp1: degraded at most, never down, the uploads are not reset', async () => {
    const from = daemon!.lines.length;
    const streams: Stream[] = [];
    try {
      for (let i = 0; i < 3; i++) streams.push(await streamVia(isp1.address));
      await uploadQueue(lab, 'isp1', { rate: '400kbit', latencyMs: 2500 });
      const until = Date.now() + 60_000;
      let maxRtt = 0;
      while (Date.now() < until) {
        const s = await daemonStatus(socket);
        maxRtt = Math.max(maxRtt, s.health.isp1?.rttMs ?? 0);
        assert.notEqual(s.facts.health.isp1, 'down', JSON.stringify(s.health.isp1));
        await sleep(1_000);
      }
      process.stdout.write(`# saturated upload: isp1 mean rtt up to ${maxRtt.toFixed(0)} ms, states ${logged(from, /event=health uplink=isp1/).map((l) => /to=(\w+)/.exec(l)?.[1]).join(',') || 'unchanged'}\n`);
      assert.ok(maxRtt > 1000, `the queue was real: mean rtt up to ${maxRtt} ms`);
      assert.deepEqual(logged(from, /event=health uplink=isp1 from=\S+ to=down/), []);
      assert.deepEqual(logged(from, /event=conntrack_cleared/), []);
      for (const s of streams) assert.equal(s.end(), undefined, `an upload ended: ${JSON.stringify(s.end())}`);
    } finally {
      await clearUploadQueue(lab, 'isp1');
      for (const s of streams) {
        const end = await s.stop();
        assert.equal(end.event, 'stopped', `an upload ended by itself: ${JSON.stringify(end)}`);
      }
    }
  });

  it('the only target, shared by both uplinks, stops answering: LAN traffic keeps flowing (last resort), and status says why', async () => {
    await start({ targets: [SECOND_TARGET] });
    const from = daemon!.lines.length;
    assert.ok(daemon!.lines.some((l) => /level=warn .*every uplink \(isp1, isp2\) monitors only 192\.0\.2\.53: a single point of failure/.test(l)), 'the weak monitoring was warned about');
    const stream = await streamVia(isp1.address);
    await silenceTarget(lab, SECOND_TARGET);
    try {
      await waitForVerdict(socket, 'isp1', 'down', 30_000);
      await waitForVerdict(socket, 'isp2', 'down', 30_000);
      const s = await daemonStatus(socket);
      assert.ok(s.uplinks.every((u) => u.inDefault && u.lastResort === true), JSON.stringify(s.uplinks));
      assert.ok(s.warnings.some((w) => w.startsWith('LAST RESORT: every uplink is judged down')), s.warnings.join('\n'));
      assert.match(s.text, /LAST RESORT/);
      assert.deepEqual(await defaultMembers(lab), ['isp1', 'isp2'], 'the default keeps both');
      const flows = await lanFlows(lab, FLOWS);
      assert.equal(flows.failed, 0, `LAN flows still work: ${JSON.stringify(flows)}`);
      // isp1 still receives (the stream): the targets are silent, not the path; its flows are kept.
      assert.deepEqual(logged(from, /event=conntrack_cleared uplink=isp1/), [], 'no connection of isp1 cleared');
      assert.equal(logged(from, /event=conntrack_kept uplink=isp1/).length, 1);
      assert.match(s.health.isp1?.reason ?? '', /no target answered for .* although the interface received \d+ packets/);
      const before = stream.latest().received;
      await waitFor('the stream to keep flowing', async () => (stream.latest().received > before ? true : undefined), 5_000, 100);
      assert.equal(stream.end(), undefined, 'the stream through isp1 was not reset');
    } finally {
      await unsilenceTarget(lab);
      await stream.stop();
    }
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    await waitForVerdict(socket, 'isp2', 'up', UP_MS);
  });
});
