// Benchmark: a router that also carries a full BGP table. 1,000,000 IPv4 routes in a foreign table
// (1000, proto bgp) changing 1,000 times a second, while a DHCP uplink renumbers: the renumbering
// latency, and the daemon's CPU and memory over the same window.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Benchmark } from './registry';
import { parseConfig } from '../src/config/load';
import { ownedTables } from '../src/plan/planner';
import { startDaemon, stopDaemon } from '../lab/daemon';
import { ipIn } from '../lab/exec';
import { buildRouter, runProbe, stateDir, writeFile } from './netns';
import type { RenumberArgs, RenumberResult } from './probes/renumber';
import { table } from './report';
import { fmt, summarize } from './stats';
import { renderConfig, routerSpec, type BenchUplink } from './topology';

const UPLINKS: BenchUplink[] = [
  { name: 'isp1', interface: 'wan0', weight: 1 }, // DHCP: renumbered by the probe
  { name: 'isp2', interface: 'wan1', address: '10.30.0.2/24', gateway: '10.30.0.1', weight: 1 },
];
/** Not one of uplinkd's tables (table_base 1000 and the uplinks' tables derived from their names): checked at run time. */
const FOREIGN_TABLE = 3000;
/** How long the daemon's CPU is measured beside the churn alone, before the renumberings (ms). */
const IDLE_MS = 10_000;

/** The i-th /24 of the foreign table: 11.0.0.0/24 onwards, as a full table's prefixes would be spread. */
const prefix = (i: number): string => `${11 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;

/** Clock ticks (utime + stime) and resident memory of `pid` from /proc. */
function usage(pid: number): { ticks: number; systemTicks: number; rssKiB: number; hwmKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(/\d+/.exec(status.split('\n').find((l) => l.startsWith(key)) ?? '0')?.[0] ?? 0);
  return { ticks: Number(fields[11]) + Number(fields[12]), systemTicks: Number(fields[12]), rssKiB: kib('VmRSS:'), hwmKiB: kib('VmHWM:') };
}

export const busyRouterBenchmark: Benchmark = {
  name: 'busy-router',
  async run({ quick, progress }) {
    const routes = quick ? 100_000 : 1_000_000;
    const churnPerSecond = 1000;
    const { router } = await buildRouter('busy', routerSpec(UPLINKS));
    await ipIn(router, ['-batch', '-'], { input: 'link add bgp0 type veth peer name bgp0p\nlink set bgp0 up\nlink set bgp0p up\n' });
    progress(`loading ${routes} routes into table ${FOREIGN_TABLE} (ip -batch)`);
    const t0 = Date.now();
    const lines: string[] = [];
    for (let i = 0; i < routes; i++) lines.push(`route add ${prefix(i)} dev bgp0 table ${FOREIGN_TABLE} proto bgp`);
    await ipIn(router, ['-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 900_000 });
    const loadSeconds = (Date.now() - t0) / 1000;
    lines.length = 0;

    const text = renderConfig(UPLINKS, stateDir(router));
    const parsed = parseConfig(text, 'uplinkd.yaml');
    if (ownedTables(parsed).has(FOREIGN_TABLE)) throw new Error(`table ${FOREIGN_TABLE} is one of uplinkd's: pick another foreign table`);
    const config = await writeFile(router, 'uplinkd.yaml', text);
    const startedAt = Date.now();
    const daemon = await startDaemon(router, config);
    const readyMs = Date.now() - startedAt;
    const pid = daemon.child.pid!;
    // Churn: one `ip -batch` fed 1,000 commands a second (a prefix withdrawn, re-announced elsewhere).
    const churn = spawn('ip', ['-n', router, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    let k = 0;
    const tick = setInterval(() => {
      const batch: string[] = [];
      for (let j = 0; j < churnPerSecond / 10; j++, k++) {
        const p = prefix((k * 7919) % routes);
        batch.push(k % 2 === 0 ? `route del ${p} table ${FOREIGN_TABLE}` : `route add ${p} dev bgp0 table ${FOREIGN_TABLE} proto bgp`);
      }
      churn.stdin.write(`${batch.join('\n')}\n`);
    }, 100);
    // isp1's table is derived from its name (src/config/identity.ts), as in the renumber benchmark.
    const args: RenumberArgs = { iface: 'wan0', table: parsed.uplinks[0]!.table, rulePriority: 10100, warmup: 3, iterations: quick ? 10 : 100, gapMs: 200, timeoutMs: 10_000 };
    let r: RenumberResult;
    let before = usage(pid);
    let after = before;
    let windowMs = 0;
    let idle = before;
    try {
      await new Promise((res) => setTimeout(res, 3000)); // churn running before measuring
      // The cost of the churn alone: the daemon's CPU over IDLE_MS with the churn and nothing else.
      idle = usage(pid);
      await new Promise((res) => setTimeout(res, IDLE_MS));
      before = usage(pid);
      const w0 = Date.now();
      progress(`${args.iterations} renumberings while table ${FOREIGN_TABLE} changes ${churnPerSecond} times a second (uplinkd pid ${pid})`);
      r = await runProbe<RenumberResult>(router, 'renumber', args, 900_000);
      // The CPU window includes idle time between renumberings, as on a router.
      windowMs = Date.now() - w0;
      after = usage(pid);
    } finally {
      clearInterval(tick);
      churn.stdin.end();
      await stopDaemon(daemon, 'SIGTERM');
    }
    if (r.samples.length === 0) throw new Error(`no renumbering converged (timeouts ${r.timeouts}); daemon log:\n${daemon.lines.join('\n')}`);
    const converged = r.samples.map((s) => Math.max(s.rule, s.connected, s.defaultRoute));
    const s = summarize(converged);
    const cpu = ((after.ticks - before.ticks) / 100) / (windowMs / 1000) * 100;
    const idleCpu = ((before.ticks - idle.ticks) / 100) / (IDLE_MS / 1000) * 100;
    const body = [
      table(['measure', 'value', 'target'], [
        ['renumber, converged (new rule + connected + default route): p50 / p90 / p99 / max (ms)', `${fmt(s.p50)} / ${fmt(s.p90)} / **${fmt(s.p99)}** / ${fmt(s.max)}`, 'p99 < 20 ms'],
        ['renumberings converged / timed out', `${r.samples.length} / ${r.timeouts}`, 'all'],
        ['uplinkd CPU over the window (utime+stime ÷ wall)', `**${cpu.toFixed(1)} %** of a core (${((after.ticks - before.ticks) / 100).toFixed(2)} s in ${(windowMs / 1000).toFixed(1)} s, of which system time ${((after.systemTicks - before.systemTicks) / 100).toFixed(2)} s)`, '< 5 %'],
        [`uplinkd CPU beside the churn alone (${IDLE_MS / 1000} s before the renumberings)`, `**${idleCpu.toFixed(1)} %** of a core (${((before.ticks - idle.ticks) / 100).toFixed(2)} s)`, '< 5 %'],
        ['uplinkd RSS at the end / peak (VmHWM, includes start-up)', `**${(after.rssKiB / 1024).toFixed(0)} MB** / ${(after.hwmKiB / 1024).toFixed(0)} MB`, '< 150 MB'],
        ['start to `ready` (first cycle; route dumps filtered by the kernel)', `${readyMs} ms`, ''],
      ]),
      '',
      `${routes} routes in table ${FOREIGN_TABLE} (loaded in ${loadSeconds.toFixed(0)} s), ${churnPerSecond} route changes a second in it during the whole window.`,
      '',
      '**Method.** The renumber benchmark\'s router (namespace `ulb-busy`: `wan0` a DHCP uplink, `wan1` static, `lan0`) plus a veth `bgp0` '
        + `carrying ${routes} /24 routes in table ${FOREIGN_TABLE} (proto bgp), loaded with one \`ip -batch\`. \`uplinkd run\` starts after `
        + 'the table is loaded. A churn process (`ip -force -batch -`, fed 100 commands every 100 ms) withdraws and re-adds prefixes of that '
        + `table, 1,000 changes a second, from 3 s before the measurement to its end; the daemon's CPU is first measured over ${IDLE_MS / 1000} s of churn alone. The measuring process is the renumber benchmark's `
        + `(bench/probes/renumber.ts: delete old default route and address, add new address and default route; t0 = the kernel's RTM_NEWADDR), `
        + `with ${args.gapMs} ms between renumberings. CPU is the daemon's utime+stime from /proc/PID/stat over the measuring window, RSS its VmRSS `
        + 'at the end and VmHWM (peak, which includes start-up). uplinkd reads the foreign table at no point: its route dumps are filtered '
        + 'by the kernel (docs/design.md, "Which routes are read"), and the kernel drops each notification of that table before it reaches the daemon (a BPF filter on its subscriber socket, src/netlink/filter.ts).',
    ];
    return { name: 'busy-router', title: '5. A busy router: renumbering beside a churning 1,000,000-route foreign table', body: body.join('\n') };
  },
};
