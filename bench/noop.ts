// Benchmark 3: a reconcile cycle with nothing to change at 64 uplinks, and where its time goes.
import type { Benchmark } from './registry';
import { buildRouter, runProbe, stateDir, writeFile } from './netns';
import type { NoopArgs, NoopResult } from './probes/noop';
import { table } from './report';
import { fmt, summarize } from './stats';
import { renderConfig, routerSpec, scaleUplinks } from './topology';

const N = 64;

export const noopBenchmark: Benchmark = {
  name: 'noop',
  async run({ quick, progress }) {
    const uplinks = scaleUplinks(N);
    const { router } = await buildRouter('noop', routerSpec(uplinks));
    const config = await writeFile(router, 'uplinkd.yaml', renderConfig(uplinks, stateDir(router)));
    const args: NoopArgs = { config, warmup: quick ? 5 : 50, iterations: quick ? 30 : 500 };
    progress(`${args.iterations} no-op cycles at ${N} uplinks (+${args.warmup} warm-up)`);
    const r = await runProbe<NoopResult>(router, 'noop', args, 20 * 60_000);
    const row = (label: string, xs: number[]) => {
      const s = summarize(xs);
      return [label, fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.max)];
    };
    const total = summarize(r.total);
    const snap = summarize(r.snapshotAlone);
    const c = r.counts;
    const dumpRows = r.dumps.map((d) => [d.what, String(d.objects), fmt(summarize(d.dump).p50), fmt(summarize(d.decode).p50)]);
    const pct = (x: number) => `${Math.round((x / total.p50) * 100)} %`;
    const routes = r.dumps.find((d) => d.what === 'routes');
    const routeDump = routes ? summarize(routes.dump).p50 + summarize(routes.decode).p50 : 0;
    const planDiff = summarize(r.plan.map((p, i) => p + r.diff[i] + r.pinning[i])).p50;
    const body = [
      table(['ms per cycle', 'p50', 'p90', 'p99', 'max'], [
        row('**total (as the daemon runs a cycle)**', r.total),
        row('observe: snapshot from the kernel view, then lease files (as the daemon)', r.observe),
        row('plan', r.plan),
        row('diff', r.diff),
        row('nftables table: render and compare (planPinning)', r.pinning),
        row('total with a port that dumps the kernel for each snapshot (the daemon before the view)', r.totalDumping),
        row('snapshot alone, from the kernel view (sync on the subscriber socket + copy)', r.snapshotAlone),
        row('snapshot alone, dumping (scoped rtnetlink dumps + decode)', r.snapshotDumping),
        row('lease files alone (glob matches nothing)', r.leasesAlone),
      ]),
      '',
      `Target: under 5 ms → median **${fmt(total.p50)} ms**, p99 **${fmt(total.p99)} ms** (${r.total.length} cycles after ${args.warmup} warm-up). `
        + `Of the median cycle, plan + diff (with the nftables table's) take ${fmt(planDiff)} ms (${pct(planDiff)}), the snapshot alone ${fmt(snap.p50)} ms (${pct(snap.p50)}); `
        + `the same cycle dumping the kernel takes ${fmt(summarize(r.totalDumping).p50)} ms (median, same run). `
        + `The kernel held ${c.links} links, ${c.addresses} addresses, ${c.routes} IPv4 routes of interest, ${c.rules} rules and ${c.nexthops} nexthops; `
        + `dumping and decoding all routes (every table) takes ${fmt(routeDump)} ms, which the view avoids.`,
      '',
      'Where the snapshot\'s time goes (medians, ms):',
      '',
      table(['dump', 'objects', 'request → last datagram received', 'decode'], dumpRows),
      '',
      `**Method.** Router namespace \`ulb-noop\` with ${N} static veth uplinks and \`lan0\` (as in benchmark 2), balance mode. A process inside `
        + 'it (bench/probes/noop.ts) applies once, then runs the daemon\'s cycle (`Daemon.cycle()` in src/daemon/daemon.ts) with one open '
        + '`NetlinkKernelPort` opened as the daemon opens it (`cache: true`: the incremental kernel view, kept from notifications): `observe()` (src/engine/cycle.ts: `port.snapshot()`, then `readLeases()` with the snapshot\'s interface names), `plan()`, `diff()` and `planPinning()` against the table as the daemon knows it after installing it (no nft process runs); every cycle must find 0 changes. '
        + 'Before that, the same cycles with a port without the view (every snapshot dumps links, addresses, the tables of interest, rules and nexthops). '
        + 'Then it times `port.snapshot()` (view and dumping) and `readLeases()` each alone, and each dump on a plain `NetlinkClient`, receiving and '
        + 'decoding separately.',
    ];
    return { name: 'noop', title: `3. No-op reconcile at ${N} uplinks`, body: body.join('\n') };
  },
};
