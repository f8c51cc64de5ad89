// Benchmark 2: a full apply from empty at 2, 16 and 64 uplinks, uplinkd against the same
// change as a shell script of `ip` commands (one process per command, the seeds' way).
import * as path from 'node:path';
import type { Benchmark } from './registry';
import { buildRouter, cleanup, runProbe, stateDir, writeFile } from './netns';
import type { ApplyArgs, ApplyResult } from './probes/apply';
import { table } from './report';
import { fmt, median } from './stats';
import { renderConfig, routerSpec, scaleUplinks } from './topology';

const SIZES = [2, 16, 64];
const UPLINKD_BIN = path.resolve(__dirname, '..', '..', 'bin', 'uplinkd');

export const applyBenchmark: Benchmark = {
  name: 'apply',
  async run({ quick, progress }) {
    const reps = quick ? 1 : 5;
    const rows: string[][] = [];
    let at64 = '';
    for (const n of SIZES) {
      const uplinks = scaleUplinks(n);
      const { router } = await buildRouter(`apply${n}`, routerSpec(uplinks));
      const config = await writeFile(router, 'uplinkd.yaml', renderConfig(uplinks, stateDir(router)));
      progress(`${n} uplinks, ${reps} repetitions`);
      const args: ApplyArgs = { config, reps, uplinkdBin: UPLINKD_BIN };
      const r = await runProbe<ApplyResult>(router, 'apply', args, 30 * 60_000);
      await cleanup();
      const [inProcess, cli, script, batch, kernel, routing] = [r.inProcess, r.cli, r.script, r.batch, r.kernel, r.routing].map(median);
      const ratio = (x: number) => `${fmt(script / x)}×`;
      rows.push([String(n), String(r.changes), fmt(inProcess), fmt(r.inProcess[0]), fmt(cli), fmt(script), fmt(batch), fmt(routing), fmt(kernel),
        ratio(inProcess), ratio(cli), `${fmt(batch / inProcess)}×`, `${fmt(batch / routing)}×`, `${fmt(inProcess / kernel)}×`, `${fmt(routing / kernel)}×`]);
      if (n === 64) {
        at64 = `At 64 uplinks uplinkd is **${ratio(inProcess)}** faster than the script in-process and **${ratio(cli)}** as a whole \`uplinkd apply\` process (target ≥ 20×); `
          + `against one \`ip -batch\` of the same commands the whole in-process apply is **${fmt(batch / inProcess)}×** as fast (target ≥ 2×) and its routing changes alone `
          + `(reconcile(), the part \`ip -batch\` does) **${fmt(batch / routing)}×**; the whole apply takes **${fmt(inProcess / kernel)}×** and the routing changes `
          + `**${fmt(routing / kernel)}×** the time the kernel alone needs for the same requests (${fmt(kernel)} ms).`;
      }
    }
    const body = [
      table(['uplinks', 'changes', 'uplinkd in-process (ms)', 'in-process, 1st repetition (cold) (ms)', '`uplinkd apply` process (ms)', 'ip script, 1 process per command (ms)',
        'same commands in one `ip -batch` (ms)', 'in-process routing changes alone: reconcile() (ms)', 'kernel alone: pre-encoded, back to back (ms)',
        'script ÷ in-process', 'script ÷ `uplinkd apply`', '`ip -batch` ÷ in-process', '`ip -batch` ÷ reconcile()', 'in-process ÷ kernel alone',
        'reconcile() ÷ kernel alone'], rows),
      '',
      `${at64} Medians of ${reps} repetitions each, except the cold column: the first in-process apply of the measuring process (whose only `
        + 'earlier work was one `down` on the empty kernel), before V8 has warmed up, as in a one-shot `uplinkd apply`; the rest of the gap to the process column is Node '
        + 'start-up and module loading (compare the 2-uplink row).',
      '',
      '**Method.** For each size a router namespace `ulb-applyN` gets N veth uplinks `u<i>` (10.1.<i>.2/24, gateway 10.1.<i>.1, '
        + 'static, weights 1..4) and `lan0`, with the veth peers in `ulb-applyN-sink` (this kernel has no dummy driver); the config is '
        + 'balance mode. "changes" is the number of objects created: per uplink a table with its network, its default route, the LAN '
        + 'network, every other uplink\'s network and 127.0.0.0/8, two rules and a nexthop; plus the shared rules, the resilient group '
        + 'and the balanced default. A process inside the namespace (bench/probes/apply.ts) first takes `uplinkd plan --format ip` from '
        + 'the empty state as the script, then per repetition times, in turn, starting from empty each time: '
        + '(a) **in-process**: `applyOnce()` (src/cli/oneshot.ts, what `uplinkd apply` runs: open the rtnetlink socket, snapshot the '
        + 'kernel and `table ip uplinkd` (through libnftables in the process, src/nft/libnftables.ts), read leases, plan, diff, write the iproute2 name files, '
        + 'then the nftables table (one libnftables transaction, off the event loop) beside the routing changes, while other programs\' firewall rules are read '
        + 'for the mark warnings (the nftables ruleset through libnftables; no process is started: `iptables-nft-save` runs only for iptables-nft rules that '
        + 'nft lists as opaque `xt` statements and `iptables-legacy-save` only when /proc/net/ip_tables_names lists legacy tables, and the namespace has neither)); '
        + '(b) **`uplinkd apply`** as a child process (`node bin/uplinkd apply -c ...`), wall time including Node start-up and module '
        + 'loading; (c) the **script** with `sh -e`, one `ip` process per command; (d) the same commands fed to one `ip -batch -` '
        + '(for scale: the cost of the script is mostly process start-up); (e) **kernel alone**: the same changes encoded once beforehand '
        + 'with the codec (src/netlink), sent on a fresh rtnetlink socket back to back in datagrams of up to 32 KiB without NLM_F_ACK '
        + '(rtnetlink handles each datagram inside sendmsg; only refusals would answer), then one NLMSG_NOOP with NLM_F_ACK, timed until its '
        + 'ack: no planning, no per-request bookkeeping, the floor for these requests; (f) **reconcile() alone**: the port opened, the kernel observed and '
        + 'the plan made before the clock starts, then only the routing changes through the netlink client (src/netlink/socket.ts: many requests per '
        + 'datagram, NLM_F_ACK only on the last of each, up to 4096 in flight), which is what `ip -batch` does; the nftables table, which `ip -batch` '
        + 'does not make, is left out. After each it checks that `planOnce()` finds nothing '
        + 'left to change (all five made the same kernel state), then removes everything with `downOnce()` (not timed).',
    ];
    return { name: 'apply', title: '2. Full apply from empty: uplinkd against a script of `ip` commands', body: body.join('\n') };
  },
};
