// Health benchmark 3: what monitoring costs: probe packets and bytes per second per uplink
// (nft counters on the provider side) and the daemon's CPU (/proc/PID/stat), with monitoring
// off and on.
import { readFileSync } from 'node:fs';
import { run, sleep } from '../lab/exec';
import { countProbes, probeCount, type ProbeCount } from '../lab/health';
import type { Benchmark } from './registry';
import { healthLab } from './health-setup';
import { commOf } from './netns';
import { table } from './report';
import { fmt } from './stats';

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
export function cpuTicks(statText: string): number {
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

async function clockTicks(): Promise<number> {
  return Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
}

/** CPU share of `pid` over `ms`, percent of one CPU. */
async function cpuPercent(pid: number, ms: number, hz: number): Promise<number> {
  const read = () => cpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const t0 = Date.now();
  const c0 = read();
  await sleep(ms);
  const c1 = read();
  return (100 * (c1 - c0)) / hz / ((Date.now() - t0) / 1000);
}

export const healthCostBenchmark: Benchmark = {
  name: 'health-cost',
  async run({ quick, progress }) {
    const seconds = quick ? 5 : 60;
    const hz = await clockTicks();
    const h = await healthLab('hc');
    let idleCpu: number;
    let busyCpu: number;
    const perUplink: { name: string; c: ProbeCount }[] = [];
    try {
      let d = await h.start(false);
      await sleep(2000);
      progress(`daemon without monitoring: ${seconds} s of CPU (pid ${d.child.pid}, ${commOf(d.child.pid!)})`);
      idleCpu = await cpuPercent(d.child.pid!, seconds * 1000, hz);
      d = await h.start(true);
      for (const u of h.lab.uplinks) await countProbes(h.lab, u.name, u.address);
      await sleep(2000);
      progress(`daemon monitoring both uplinks: ${seconds} s of CPU and probe counters (pid ${d.child.pid})`);
      const before = await Promise.all(h.lab.uplinks.map((u) => probeCount(h.lab, u.name)));
      const t0 = Date.now();
      busyCpu = await cpuPercent(d.child.pid!, seconds * 1000, hz);
      const elapsed = (Date.now() - t0) / 1000;
      const after = await Promise.all(h.lab.uplinks.map((u) => probeCount(h.lab, u.name)));
      h.lab.uplinks.forEach((u, i) => {
        const a = after[i];
        const b = before[i];
        perUplink.push({
          name: u.name,
          c: {
            requests: (a.requests - b.requests) / elapsed,
            replies: (a.replies - b.replies) / elapsed,
            requestBytes: (a.requestBytes - b.requestBytes) / elapsed,
            replyBytes: (a.replyBytes - b.replyBytes) / elapsed,
          },
        });
      });
    } finally {
      await h.close();
    }
    const body = [
      table(
        ['uplink', 'probes out /s', 'answers in /s', 'bytes out /s', 'bytes in /s'],
        perUplink.map(({ name, c }) => [name, fmt(c.requests), fmt(c.replies), fmt(c.requestBytes), fmt(c.replyBytes)]),
      ),
      '',
      table(['`uplinkd run` CPU (percent of one CPU, utime + stime)', 'value'], [
        ['without monitoring (idle daemon)', `${fmt(idleCpu)} %`],
        ['monitoring two uplinks, two targets each', `**${fmt(busyCpu)} %**`],
      ]),
      '',
      'docs/health.md predicts 1 probe per target and second in steady state, 2 out and 2 in per uplink with two targets, '
        + '44 IP bytes each (88 B/s each way); the daemon also reads /proc/net/dev and judges every 50 ms per uplink.',
      '',
      `**Method.** The lab (\`ulb-hc-*\`). First \`uplinkd run\` without any \`monitor:\` section, CPU over ${seconds} s; then `
        + 'restarted with both uplinks monitored (targets 192.0.2.80 and 192.0.2.53, default settings: ICMP, one round a second), '
        + `CPU and counters over ${seconds} s after a 2 s warm-up. CPU is the change of utime + stime of the daemon's node `
        + `process in /proc/PID/stat (CLK_TCK ${hz}) over wall time. Packets and bytes come from nftables counters in each `
        + 'provider\'s namespace: echo requests from the uplink\'s address to the targets as they arrive from the router '
        + '(prerouting) and echo replies to it as they leave towards the router (postrouting).',
    ];
    return { name: 'health-cost', title: 'Health 3. Probe cost: packets per uplink and daemon CPU', body: body.join('\n') };
  },
};
