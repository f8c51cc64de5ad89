// Health benchmark 1: detection and recovery time with the default monitor settings, over
// repeated blackhole on/off cycles of isp1's upstream (its link stays up), alternately with a
// LAN stream flowing through isp1 and with isp1 idle.
import { blackholeUpstream, restoreUpstream } from '../lab/faults';
import { sleep, waitFor } from '../lab/exec';
import { openStream, startStreamServer, type Stream } from '../lab/stream';
import type { Benchmark } from './registry';
import { healthLab, lineAfter } from './health-setup';
import { table } from './report';
import { fmt, percentile, summarize } from './stats';

interface Cycle {
  traffic: boolean;
  /** ms from the fault's injection (before `ip route add blackhole` ran) to ... */
  down: number;
  downGroup: number;
  conntrack: number;
  /** ms from the fault's removal to ... */
  up: number;
  upGroup: number;
  /** How long the `ip route` command took (the injection's own uncertainty). */
  injectMs: number;
}

const HOLD_MS = 1000;

export const healthDetectBenchmark: Benchmark = {
  name: 'health-detect',
  async run({ quick, progress }) {
    const cycles = quick ? 4 : 20;
    const h = await healthLab('hd');
    const samples: Cycle[] = [];
    try {
      const d = await h.start(true);
      await startStreamServer(h.lab.ns.inet);
      const isp1 = h.lab.uplinks.find((u) => u.name === 'isp1')!;
      progress(`${cycles} blackhole on/off cycles of isp1's upstream, every other one with a LAN stream through isp1 (daemon pid ${d.child.pid})`);
      for (let i = 0; i < cycles; i++) {
        const traffic = i % 2 === 0;
        let stream: Stream | undefined;
        if (traffic) {
          stream = await openStream(h.lab.ns.lan, h.lab.internetHost, isp1.address);
          await waitFor('the stream to flow', async () => (stream!.latest().received > 20_000 ? true : undefined), 10_000, 50);
        }
        // Out of step with the 1 s probe rounds, so the fault meets every phase of a round.
        await sleep(2000 + Math.random() * 1000);
        const from = d.lines.length;
        const t0 = Date.now();
        await blackholeUpstream(h.lab, 'isp1');
        const injectMs = Date.now() - t0;
        const down = await lineAfter(d, from, /event=health uplink=isp1 .*to=down/, 10_000);
        const downGroup = await lineAfter(d, down.index, /event=apply change="ip nexthop replace id 1000 group 1002,/, 5_000);
        const conntrack = await lineAfter(d, down.index, /event=conntrack_(cleared|kept) uplink=isp1/, 5_000);
        await sleep(HOLD_MS);
        await stream?.stop();
        const back = d.lines.length;
        const t1 = Date.now();
        await restoreUpstream(h.lab, 'isp1');
        const up = await lineAfter(d, back, /event=health uplink=isp1 .*to=up/, 15_000);
        const upGroup = await lineAfter(d, up.index, /event=apply change="ip nexthop replace id 1000 group 1001,/, 5_000);
        samples.push({
          traffic,
          down: down.ts - t0,
          downGroup: downGroup.ts - t0,
          conntrack: conntrack.ts - t0,
          up: up.ts - t1,
          upGroup: upGroup.ts - t1,
          injectMs,
        });
        if ((i + 1) % 10 === 0) progress(`${i + 1}/${cycles} cycles`);
      }
    } finally {
      await h.close();
    }
    const row = (label: string, xs: number[]) => {
      const s = summarize(xs);
      return [label, fmt(s.min), fmt(s.p50), fmt(percentile(xs, 95)), fmt(s.max)];
    };
    type Num = Exclude<keyof Cycle, 'traffic'>;
    const col = (k: Num, traffic?: boolean) => samples.filter((s) => traffic === undefined || s.traffic === traffic).map((s) => s[k]);
    const busyP95 = percentile(col('downGroup', true), 95);
    const idleP95 = percentile(col('downGroup', false), 95);
    const body = [
      table(['ms', 'min', 'p50', 'p95', 'max'], [
        row('**with traffic**: fault injected → `event=health uplink=isp1 from=up to=down`', col('down', true)),
        row('**with traffic**: fault injected → default group without isp1', col('downGroup', true)),
        row('**idle**: fault injected → `event=health uplink=isp1 from=up to=down`', col('down', false)),
        row('**idle**: fault injected → default group without isp1', col('downGroup', false)),
        row('fault injected → isp1\'s connections cleared or kept (`event=conntrack_*`)', col('conntrack')),
        row('**recovery**: fault removed → `event=health uplink=isp1 from=down to=up`', col('up')),
        row('fault removed → default group with isp1 again', col('upGroup')),
      ]),
      '',
      `${samples.length} failures and recoveries, half with traffic. Targets: out of the default within 1000 ms p95 with traffic → **${fmt(busyP95)} ms** `
        + `(${busyP95 <= 1000 ? 'met' : 'NOT met'}), within 3000 ms idle → **${fmt(idleP95)} ms** (${idleP95 <= 3000 ? 'met' : 'NOT met'}). `
        + 'docs/health.md predicts about 0.45–0.8 s with traffic, 1.5–2.5 s idle, and 2–3 s for recovery. '
        + `The blackhole command itself took ${fmt(summarize(col('injectMs')).p50)} ms (p50) and is inside the numbers.`,
      '',
      '**Method.** The lab of `npm run demo` (namespaces `ulb-hd-*`: LAN host, router, providers isp1 and isp2, internet host '
        + 'with 192.0.2.80 and 192.0.2.53 on its loopback). `uplinkd run` in the router monitors both uplinks with '
        + '`monitor: {targets: [192.0.2.80, 192.0.2.53]}` and every other setting at its default (ICMP, interval 1 s, '
        + 'timeout 250 ms, down_after 3, up_after 3). Every other cycle first opens a TCP stream from the LAN host through isp1 '
        + '(lab/stream.ts: 1 KiB every 10 ms, echoed back). A cycle: wait 2–3 s (a random phase against the probe rounds), '
        + 'take t0, add `blackhole 192.0.2.0/24` in isp1\'s namespace (lab/faults.ts `blackholeUpstream`: the provider '
        + 'silently drops everything to the internet; the router\'s link, address and gateway stay), wait for the daemon\'s '
        + 'log lines, keep the outage 1 s, take t1, delete the blackhole, wait for the recovery lines. Times are the log lines\' '
        + '`ts` minus t0/t1 (one system clock; t0 is taken before the `ip` process starts, which can only lengthen the numbers).',
    ];
    return { name: 'health-detect', title: 'Health 1. Detection and recovery time (default monitor settings)', body: body.join('\n') };
  },
};
