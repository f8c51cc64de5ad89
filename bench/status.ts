// `uplinkd status` at 2 uplinks as a whole process: with a daemon running (it answers on its
// control socket) and without (a one-shot snapshot and plan), beside `node -e 0`.
import { startDaemon, stopDaemon } from '../lab/daemon';
import { UPLINKD_BIN } from '../lab/inspect';
import { UplinkdError } from '../src/errors';
import type { Benchmark } from './registry';
import { buildRouter, runProbe, stateDir, writeFile } from './netns';
import type { StatusArgs, StatusResult } from './probes/status';
import { table } from './report';
import { fmt, summarize } from './stats';
import { renderConfig, routerSpec, scaleUplinks } from './topology';

export const statusBenchmark: Benchmark = {
  name: 'status',
  async run({ quick, progress }) {
    const uplinks = scaleUplinks(2);
    const { router } = await buildRouter('status', routerSpec(uplinks));
    const config = await writeFile(router, 'uplinkd.yaml', renderConfig(uplinks, stateDir(router)));
    const args: StatusArgs = { config, uplinkdBin: UPLINKD_BIN, warmup: quick ? 2 : 5, iterations: quick ? 10 : 50 };
    progress(`${args.iterations} \`uplinkd status\` processes without a daemon`);
    const alone = await runProbe<StatusResult>(router, 'status', args, 10 * 60_000);
    if (alone.fromDaemon) throw new UplinkdError('lab', 'status answered from a daemon that should not be running');
    const daemon = await startDaemon(router, config);
    let live: StatusResult;
    try {
      progress(`${args.iterations} \`uplinkd status\` processes with the daemon running`);
      live = await runProbe<StatusResult>(router, 'status', args, 10 * 60_000);
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
    }
    if (!live.fromDaemon) throw new UplinkdError('lab', 'status did not answer from the running daemon');
    const row = (label: string, xs: number[]) => {
      const s = summarize(xs);
      return [label, fmt(s.p50), fmt(s.p90), fmt(s.max)];
    };
    const s = summarize(live.status);
    const body = [
      table(['ms, whole process', 'p50', 'p90', 'max'], [
        row('**`uplinkd status`, daemon running** (answer from its control socket)', live.status),
        row('`uplinkd status`, no daemon (one-shot: snapshot, plan, diff)', alone.status),
        row('`node -e 0` (same runs, for scale)', [...live.node, ...alone.node]),
      ]),
      '',
      `Target: under 100 ms at 2 uplinks → median **${fmt(s.p50)} ms** with the daemon running (${args.iterations} runs after ${args.warmup} warm-up, each way).`,
      '',
      '**Method.** Router namespace `ulb-status` with 2 static veth uplinks and `lan0`, balance mode. A process inside it '
        + '(bench/probes/status.ts) starts `node bin/uplinkd status -c FILE` with spawnSync and takes the wall time from spawn to exit '
        + '(Node start-up, module loading, config, answer, exit), then `node -e 0` the same way, alternately; first with no daemon '
        + '(the command falls back to a one-shot snapshot and plan of the kernel), then with `uplinkd run` started in the namespace '
        + '(the command asks it on its control socket; the probe checks which of the two answered).',
    ];
    return { name: 'status', title: '6. `uplinkd status`: whole-process time at 2 uplinks', body: body.join('\n') };
  },
};
