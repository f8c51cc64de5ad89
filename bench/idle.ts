// Benchmark 4: the daemon's memory and CPU while nothing happens, with 4 uplinks.
import { readFileSync } from 'node:fs';
import { startDaemon, stopDaemon } from '../lab/daemon';
import { run, sleep } from '../lab/exec';
import type { Benchmark } from './registry';
import { buildRouter, commOf, stateDir, writeFile } from './netns';
import { table } from './report';
import { fmt } from './stats';
import { renderConfig, routerSpec, scaleUplinks } from './topology';

/** VmRSS and VmHWM from /proc/PID/status, in MB (10^6 bytes). */
export function memoryOf(status: string): { rssMb: number; hwmMb: number } {
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`no ${field} in /proc status`);
    return (Number(m[1]) * 1024) / 1e6;
  };
  return { rssMb: kb('VmRSS'), hwmMb: kb('VmHWM') };
}

/** utime + stime (clock ticks) from /proc/PID/stat; the command name may contain spaces and parentheses. */
export function cpuTicksOf(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}

export const idleBenchmark: Benchmark = {
  name: 'idle',
  async run({ quick, progress }) {
    const uplinks = scaleUplinks(4);
    const { router } = await buildRouter('idle', routerSpec(uplinks));
    const config = await writeFile(router, 'uplinkd.yaml', renderConfig(uplinks, stateDir(router)));
    const daemon = await startDaemon(router, config);
    const windowS = quick ? 10 : 60;
    const settleS = quick ? 1 : 5;
    const tck = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
    let ready: { rssMb: number; hwmMb: number };
    let end: { rssMb: number; hwmMb: number };
    let maxRss = 0;
    let ticks: number;
    let cpuPct: number;
    try {
      const pid = daemon.child.pid ?? -1;
      const comm = commOf(pid);
      if (comm !== 'node') throw new Error(`pid ${pid} is '${comm}', not the daemon's node process`);
      const status = () => memoryOf(readFileSync(`/proc/${pid}/status`, 'utf8'));
      const cpu = () => cpuTicksOf(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      ready = status();
      progress(`daemon pid ${pid} ready; settling ${settleS} s, then measuring ${windowS} s`);
      await sleep(settleS * 1000);
      const c0 = cpu();
      const t0 = Date.now();
      for (let s = 0; s < windowS; s += 5) {
        await sleep(Math.min(5, windowS - s) * 1000);
        maxRss = Math.max(maxRss, status().rssMb);
      }
      ticks = cpu() - c0;
      cpuPct = ((ticks / tck) / ((Date.now() - t0) / 1000)) * 100;
      end = status();
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
    }
    const applies = (daemon.lines.join('\n').match(/event=apply /g) ?? []).length;
    const body = [
      table(['', 'value', 'target'], [
        ['RSS when ready (VmRSS)', `${fmt(ready.rssMb)} MB`, ''],
        [`RSS, largest of the samples every 5 s over ${windowS} s`, `**${fmt(maxRss)} MB**`, 'under 80 MB'],
        ['peak RSS since start (VmHWM, at the end)', `${fmt(end.hwmMb)} MB`, ''],
        [`CPU over ${windowS} s idle (utime+stime)`, `**${fmt(cpuPct)} % of one core** (${ticks} ticks at ${tck} Hz)`, 'under 1 %'],
      ]),
      '',
      `**Method.** Router namespace \`ulb-idle\` with 4 static veth uplinks and \`lan0\`, balance mode, no \`monitor:\` sections (no health probes; `
        + 'issue 4\'s health benchmarks cover those). `uplinkd run` (bin/uplinkd, default settings: 30 s resync, 5 ms debounce) is started '
        + 'with `ip netns exec`, which execs node in place, so the child\'s pid is the daemon (checked via /proc/PID/comm). Once it logged '
        + `\`event=ready\` (it had applied ${applies} changes), it is left alone for ${settleS} s, then for ${windowS} s: CPU is utime+stime from `
        + '/proc/PID/stat at both ends divided by the wall time; memory is VmRSS from /proc/PID/status sampled every 5 s, and VmHWM at the end. '
        + `The window includes the daemon's periodic resyncs (${Math.floor(windowS / 30)} at the default 30 s). MB = 10^6 bytes.`,
    ];
    return { name: 'idle', title: '4. Daemon idle: memory and CPU with 4 uplinks', body: body.join('\n') };
  },
};
