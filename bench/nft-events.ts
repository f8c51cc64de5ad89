// Benchmark: how soon the daemon restores `table ip uplinkd` after someone deletes it (it follows nf_tables
// notifications, src/nft/events.ts), and what other tables' changes cost it: its CPU and cycles while another
// program commits nftables batches to its own tables as fast as `nft` runs.
import { readFileSync } from 'node:fs';
import type { Benchmark } from './registry';
import { startDaemon, stopDaemon, waitForLine } from '../lab/daemon';
import { buildRouter, runProbe, stateDir, writeFile } from './netns';
import type { NftRestoreArgs, NftRestoreResult } from './probes/nft-restore';
import { table } from './report';
import { fmt, summarize } from './stats';
import { renderConfig, routerSpec, type BenchUplink } from './topology';

const UPLINKS: BenchUplink[] = [
  { name: 'isp1', interface: 'wan0', address: '10.20.0.2/24', gateway: '10.20.0.1', weight: 1 },
  { name: 'isp2', interface: 'wan1', address: '10.30.0.2/24', gateway: '10.30.0.1', weight: 1 },
];

/** Clock ticks (utime + stime, 1/100 s) of `pid` from /proc. */
function ticks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export const nftEventsBenchmark: Benchmark = {
  name: 'nft-events',
  async run({ quick, progress }) {
    const { router } = await buildRouter('nftev', routerSpec(UPLINKS));
    // The periodic resync an hour away: only the notifications can bring the table back.
    const config = await writeFile(router, 'uplinkd.yaml', renderConfig(UPLINKS, stateDir(router), 'daemon:\n  resync_interval: 1h\n  debounce: 5ms'));
    const daemon = await startDaemon(router, config, undefined, 'debug');
    const pid = daemon.child.pid!;
    // 2.1 s apart: more than 5 restorations of one object in 10 s is a fight with another program, held back (src/daemon/conflict.ts).
    const restoreArgs: NftRestoreArgs = { reps: quick ? 5 : 30, gapMs: 2_100, churnMs: 0, timeoutMs: 10_000 };
    const churnArgs: NftRestoreArgs = { reps: 0, gapMs: 0, churnMs: quick ? 3_000 : 20_000, timeoutMs: 0 };
    let restore: NftRestoreResult;
    let churn: NftRestoreResult;
    let cpuTicks = 0;
    let cycles = 0;
    let applies = 0;
    try {
      await waitForLine(daemon, /event=apply change="nft -f - <<< 'table ip uplinkd/, 10_000);
      await new Promise((r) => setTimeout(r, 500));
      progress(`${restoreArgs.reps} deletions of table ip uplinkd (uplinkd pid ${pid})`);
      restore = await runProbe<NftRestoreResult>(router, 'nft-restore', restoreArgs, 600_000);
      await new Promise((r) => setTimeout(r, 500));
      const cycleLines = () => daemon.lines.filter((l) => /event=cycle /.test(l)).length;
      const nftApplies = () => daemon.lines.filter((l) => /event=apply change="nft /.test(l)).length;
      const [t0, c0, a0] = [ticks(pid), cycleLines(), nftApplies()];
      progress(`other tables changed for ${churnArgs.churnMs / 1000} s`);
      churn = await runProbe<NftRestoreResult>(router, 'nft-restore', churnArgs, 600_000);
      await new Promise((r) => setTimeout(r, 500));
      [cpuTicks, cycles, applies] = [ticks(pid) - t0, cycleLines() - c0, nftApplies() - a0];
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
    }
    const s = summarize(restore.restoreMs);
    const windowS = churn.churnMs / 1000 + 0.5;
    const body = [
      table(['measure', 'value'], [
        ['`table ip uplinkd` deleted -> re-created by the daemon: p50 / p90 / p99 / max (ms)', `${fmt(s.p50)} / ${fmt(s.p90)} / **${fmt(s.p99)}** / ${fmt(s.max)}`],
        ['deletions restored / not within 10 s', `${restore.restoreMs.length} / ${restore.timeouts}`],
        ['other tables\' batches committed during the churn', `${churn.batches} in ${(churn.churnMs / 1000).toFixed(1)} s (${(churn.batches / (churn.churnMs / 1000)).toFixed(0)} a second)`],
        ['uplinkd cycles / nft changes during the churn', `**${cycles}** / ${applies}`],
        ['uplinkd CPU during the churn (utime+stime ÷ wall)', `**${((cpuTicks / 100) / windowS * 100).toFixed(1)} %** of a core (${(cpuTicks / 100).toFixed(2)} s in ${windowS.toFixed(1)} s)`],
      ]),
      '',
      '**Method.** A router namespace (`ulb-nftev`: two static uplinks and `lan0`, flow pinning on by default) runs `uplinkd run` '
        + 'with `resync_interval: 1h`, so the periodic resync cannot be what restores the table. The measuring process '
        + '(bench/probes/nft-restore.ts) runs in that namespace and joins NFNLGRP_NFTABLES itself; it deletes the table with '
        + `\`nft delete table ip uplinkd\` ${restoreArgs.reps} times, ${restoreArgs.gapMs} ms apart (the conflict limit holds back a sixth restoration of one object within 10 s), and times each from the kernel's `
        + 'NFT_MSG_DELTABLE notification to the NFT_MSG_NEWTABLE of the table the daemon installs, both as the probe receives them '
        + '(the daemon: notification, debounce 5 ms, a cycle that runs `nft -j list table`, then `nft -f -`, both through libnftables in its process). Then the probe commits '
        + 'batches to `table inet bench_fw` and `table ip bench_nat` (a chain, a rule, a set or a flush each, one `nft -f -` process '
        + 'after another) and the daemon\'s CPU (/proc/PID/stat) and its cycles (debug log `event=cycle`) are counted over that window '
        + 'plus 0.5 s: each of those notifications is dropped after reading its family and table name.',
    ];
    return { name: 'nft-events', title: '7. nftables notifications: restoring table ip uplinkd, and other tables\' churn', body: body.join('\n') };
  },
};
