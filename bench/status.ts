// `uplinkd status` at 2 uplinks as a whole process: with a daemon running (it answers on its
// control socket) and without (a one-shot snapshot and plan), beside `node -e 0`.
import { promises as fs } from 'node:fs';
import { startDaemon, stopDaemon } from '../lab/daemon';
import { LAB_RUNTIME_DIR } from '../lab/exec';
import { recordPath } from '../src/daemon/socket-record';
import { UPLINKD_BIN } from '../lab/inspect';
import { UplinkdError } from '../src/errors';
import type { Benchmark } from './registry';
import { buildRouter, runProbe, stateDir, writeFile } from './netns';
import type { StatusArgs, StatusResult } from './probes/status';
import { table } from './report';
import { fmt, summarize } from './stats';
import { renderConfig, routerSpec, scaleUplinks } from './topology';

/** Set in some environments (this build machine's among them); Node reads the bundle it names at every start. */
const EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS;

export const statusBenchmark: Benchmark = {
  name: 'status',
  async run({ quick, progress }) {
    const uplinks = scaleUplinks(2);
    const { router } = await buildRouter('status', routerSpec(uplinks));
    const config = await writeFile(router, 'uplinkd.yaml', renderConfig(uplinks, stateDir(router)));
    const args: StatusArgs = { config, uplinkdBin: UPLINKD_BIN, warmup: quick ? 2 : 5, iterations: quick ? 10 : 50, parsed: false };
    progress(`${args.iterations} \`uplinkd status\` processes without a daemon`);
    const alone = await runProbe<StatusResult>(router, 'status', args, 10 * 60_000);
    if (alone.fromDaemon) throw new UplinkdError('lab', 'status answered from a daemon that should not be running');
    const daemon = await startDaemon(router, config);
    let live: StatusResult;
    let service: StatusResult | undefined;
    try {
      // The daemon's socket record is what the timed `status` runs find: no record, no measurement.
      await fs.access(recordPath(LAB_RUNTIME_DIR, await fs.realpath(config)));
      progress(`${args.iterations} \`uplinkd status\` processes with the daemon running`);
      live = await runProbe<StatusResult>(router, 'status', { ...args, parsed: true }, 10 * 60_000);
      if (EXTRA_CA) {
        progress(`${args.iterations} more without NODE_EXTRA_CA_CERTS, as the systemd service and DHCP hooks run`);
        service = await runProbe<StatusResult>(router, 'status', { ...args, unset: ['NODE_EXTRA_CA_CERTS'] }, 10 * 60_000);
      }
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
    }
    if (!live.fromDaemon || (service && !service.fromDaemon)) throw new UplinkdError('lab', 'status did not answer from the running daemon');
    const row = (label: string, xs: number[]) => {
      const s = summarize(xs);
      return [label, fmt(s.p50), fmt(s.p90), fmt(s.max)];
    };
    // Each run minus the `node -e 0` right after it: our own work, with most of the machine's load cancelled.
    const own = (xs: number[], node: number[]) => summarize(xs.map((x, i) => x - node[i]!)).p50;
    const main = service ?? live;
    const s = summarize(main.status);
    const serviceRows = service ? [
      [...row('**`uplinkd status`, daemon running, without NODE_EXTRA_CA_CERTS** (as the systemd service and DHCP hooks run)', service.status), fmt(own(service.status, service.node)), String(service.modules.status), String(service.builtins.status)],
      [...row('`node -e 0` without NODE_EXTRA_CA_CERTS (same runs)', service.node), '', String(service.modules.node), '0'],
    ] : [];
    const extraCa = service
      ? `This machine's environment sets NODE_EXTRA_CA_CERTS=${EXTRA_CA}: Node then reads and parses that CA bundle before any script runs, in every process, \`node -e 0\` too `
        + `(${fmt(summarize(live.node).p50)} ms with it, ${fmt(summarize(service.node).p50)} ms without). It is not Node's default and not uplinkd's: the packaged systemd unit sets no environment, and DHCP clients run their hooks with an environment of their own. The first rows are without it, the later ones as this environment is.`
      : 'NODE_EXTRA_CA_CERTS is not set here.';
    const body = [
      table(['ms, whole process', 'p50', 'p90', 'max', 'p50 of (run − next `node -e 0`)', 'module files loaded', 'Node built-ins beyond `node -e 0`'], [
        ...serviceRows,
        [...row(`${service ? '' : '**'}\`uplinkd status\`, daemon running${service ? '' : '**'} (socket from the daemon\'s socket record${service ? '; NODE_EXTRA_CA_CERTS set' : ''})`, live.status), fmt(own(live.status, live.node)), String(live.modules.status), String(live.builtins.status)],
        [...row('`uplinkd status`, daemon running, no socket record (parses the file: the path before issue 7)', live.parsed), fmt(own(live.parsed, live.node)), String(live.modules.parsed ?? ''), String(live.builtins.parsed ?? '')],
        [...row('`uplinkd status`, no daemon (parse, one-shot snapshot, plan, diff)', alone.status), fmt(own(alone.status, alone.node)), String(alone.modules.status), String(alone.builtins.status)],
        [...row('`node -e 0` (same runs, for scale)', [...live.node, ...alone.node]), '', String(live.modules.node), '0'],
      ]),
      '',
      `Target: under 100 ms at 2 uplinks (\`node -e 0\` about 60 ms on the issue's machine) → median **${fmt(s.p50)} ms** with the daemon running${service ? ' (without NODE_EXTRA_CA_CERTS)' : ''}, `
        + `**${fmt(own(main.status, main.node))} ms** more than \`node -e 0\` (${args.iterations} runs after ${args.warmup} warm-up, each way).`,
      '',
      extraCa,
      '',
      '**Method.** Router namespace `ulb-status` with 2 static veth uplinks and `lan0`, balance mode. A process inside it '
        + '(bench/probes/status.ts) starts `node bin/uplinkd status -c FILE` with spawnSync and takes the wall time from spawn to exit '
        + '(Node start-up, module loading, config, answer, exit), then `node -e 0` the same way, alternately; first with no daemon '
        + '(the command falls back to a one-shot snapshot and plan of the kernel), then with `uplinkd run` started in the namespace '
        + '(the command finds its socket in the daemon\'s socket record, src/daemon/socket-record.ts, and asks it; the probe checks which of the two answered), '
        + 'where each round also times a `status` run with UPLINKD_RUNTIME_DIR naming an empty directory: no record, so it parses the YAML file to find '
        + 'the socket, as every status did before the records. Modules loaded: one extra run of each with NODE_DEBUG=module, '
        + 'counting the distinct files of its `load "FILE"` lines (ours, npm\'s and addons), and, by a preload that lists '
        + 'process.moduleLoadList\'s `NativeModule` entries at exit, Node\'s own built-in modules it loads beyond those of `node -e 0` '
        + '(node:net and the stream modules under it, for instance).',
    ];
    return { name: 'status', title: '6. `uplinkd status`: whole-process time at 2 uplinks', body: body.join('\n') };
  },
};
