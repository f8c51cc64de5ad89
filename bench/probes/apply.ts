// Runs inside a benchmark router namespace with N static uplinks and nothing of uplinkd's in
// the kernel. Times a full apply from empty three (four) ways, tearing down between runs:
// in-process applyOnce(), `uplinkd apply` as a new process, and the same change as a shell
// script of `ip` commands, one process each (plus the same commands in one `ip -batch`).
// After every apply it checks that uplinkd sees nothing left to change. Also the time the kernel
// alone needs: the same changes pre-encoded, sent back to back without acks in datagrams of up to
// 32 KiB (rtnetlink handles them inside sendmsg), then one acknowledged NLMSG_NOOP whose ack
// comes after all of them. And reconcile() alone: the routing changes of the in-process apply, without
// observing, planning or the nftables table. Prints one JSON line.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { downOnce, applyOnce, planOnce } from '../../src/cli/oneshot';
import { computeCycle, observe, reconcile } from '../../src/engine/cycle';
import { NetlinkKernelPort } from '../../src/kernel/netlink-port';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { UplinkdError } from '../../src/errors';
import type { Change } from '../../src/model/types';
import * as C from '../../src/netlink/constants';
import { decodeLink, encodeLinkDumpRequest } from '../../src/netlink/link';
import { ifNamesFrom, type IfNames } from '../../src/netlink/names';
import { encodeNexthop } from '../../src/netlink/nexthop';
import { encodeRoute } from '../../src/netlink/route';
import { encodeRule } from '../../src/netlink/rule';
import { NetlinkClient, openRouteSocket } from '../../src/netlink/socket';
import { encodeMessage, splitDatagram } from '../../src/netlink/wire';

export interface ApplyArgs {
  config: string;
  reps: number;
  uplinkdBin: string;
}

export interface ApplyResult {
  changes: number;
  /** ms per repetition */
  inProcess: number[];
  cli: number[];
  script: number[];
  batch: number[];
  /** ms: pre-encoded requests sent back to back, until the kernel has handled the last */
  kernel: number[];
  /** ms: reconcile() of the routing changes alone (port opened, kernel observed and plan made before the clock starts) */
  routing: number[];
}

/** Each change from empty as one netlink message (all adds), packed into datagrams of up to 32 KiB. */
function preEncode(changes: Change[], names: IfNames): Buffer[] {
  const flags = C.NLM_F_REQUEST | C.NLM_F_CREATE | C.NLM_F_EXCL; // no NLM_F_ACK: only errors answer
  const datagrams: Buffer[] = [];
  let parts: Buffer[] = [];
  let bytes = 0;
  let seq = 1;
  for (const c of changes) {
    if (c.op !== 'add') throw new UplinkdError('lab', `a plan from empty should only add (got ${c.op})`);
    const [type, payload] = c.kind === 'route' ? [C.RTM_NEWROUTE, encodeRoute(c.route, names)]
      : c.kind === 'rule' ? [C.RTM_NEWRULE, encodeRule(c.rule)] : [C.RTM_NEWNEXTHOP, encodeNexthop(c.nexthop, names)];
    const msg = encodeMessage(type, flags, seq++, 0, payload);
    if (bytes + msg.length > 32 << 10) {
      datagrams.push(Buffer.concat(parts));
      parts = [];
      bytes = 0;
    }
    parts.push(msg);
    bytes += msg.length;
  }
  if (parts.length) datagrams.push(Buffer.concat(parts));
  datagrams.push(encodeMessage(C.NLMSG_NOOP, C.NLM_F_REQUEST | C.NLM_F_ACK, 0x7fffffff, 0, Buffer.alloc(0)));
  return datagrams;
}

/** Sends the datagrams back to back; resolves with the ms until the final NOOP's ack; any refusal fails. */
function sendRaw(datagrams: Buffer[]): Promise<number> {
  const sock = openRouteSocket();
  return new Promise<number>((resolve, reject) => {
    const t = performance.now();
    sock.on('message', (buf: Buffer) => {
      for (const m of splitDatagram(buf).messages) {
        if (m.type !== C.NLMSG_ERROR) continue;
        const errno = m.payload.readInt32LE(0);
        if (errno !== 0) reject(new UplinkdError('lab', `kernel refused request ${m.seq}: errno ${-errno}`));
        else if (m.seq === 0x7fffffff) resolve(performance.now() - t);
      }
    });
    for (const d of datagrams) sock.send(d, { port: 0 }, (err) => { if (err) reject(err); });
  }).finally(() => sock.close());
}

const ignore = () => undefined;

/** ms of reconcile() alone for the plan from empty: what the in-process apply spends on the routing changes. */
async function timeRouting(config: Config, expected: number): Promise<number> {
  const port = await NetlinkKernelPort.open();
  try {
    // The table is left to the full apply: ip -batch, the comparison, has no nftables part either.
    const cycle = computeCycle(config, await observe(port, config, { nft: { known: { kind: 'absent' } } }));
    const t = performance.now();
    const r = await reconcile(port, cycle.changes);
    const ms = performance.now() - t;
    if (r.failed.length || r.applied.length !== expected)
      throw new UplinkdError('lab', `reconcile applied ${r.applied.length} of ${expected}, ${r.failed.length} failed`);
    return ms;
  } finally {
    port.close();
  }
}

function runTimed(cmd: string, args: string[], input?: string): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new UplinkdError('lab', `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

async function expectConverged(config: Config, after: string): Promise<void> {
  const left = (await planOnce(config, ignore)).changes.length;
  if (left !== 0) throw new UplinkdError('lab', `after ${after}, uplinkd still wants ${left} changes`);
}

async function expectEmpty(config: Config): Promise<void> {
  const r = await downOnce(config);
  if (r.failed.length) throw new UplinkdError('lab', `down failed: ${r.failed[0].error.message}`);
}

async function main(args: ApplyArgs): Promise<ApplyResult> {
  const config = await loadConfig(args.config);
  await expectEmpty(config);
  const plan = spawnSync(process.execPath, [args.uplinkdBin, 'plan', '-c', args.config, '--format', 'ip'], { encoding: 'utf8' });
  if (plan.status !== 0) throw new UplinkdError('lab', `uplinkd plan failed: ${plan.stderr}`);
  const commands = plan.stdout.split('\n').filter((l) => l.startsWith('ip '));
  const script = path.join(path.dirname(args.config), 'apply.sh');
  writeFileSync(script, commands.join('\n') + '\n');
  const batchInput = commands.map((c) => c.slice('ip '.length)).join('\n') + '\n';

  const client = new NetlinkClient();
  const names = ifNamesFrom((await client.dump(C.RTM_GETLINK, encodeLinkDumpRequest())).map((m) => decodeLink(m.payload)));
  client.close();
  const datagrams = preEncode((await planOnce(config, ignore)).changes, names);

  const out: ApplyResult = { changes: commands.length, inProcess: [], cli: [], script: [], batch: [], kernel: [], routing: [] };
  for (let rep = 0; rep < args.reps; rep++) {
    const t = performance.now();
    const r = await applyOnce(config, ignore);
    out.inProcess.push(performance.now() - t);
    if (r.failed.length || r.applied.length !== commands.length)
      throw new UplinkdError('lab', `applyOnce applied ${r.applied.length} of ${commands.length}, ${r.failed.length} failed`);
    await expectConverged(config, 'applyOnce');
    await expectEmpty(config);

    out.cli.push(runTimed(process.execPath, [args.uplinkdBin, 'apply', '-c', args.config]));
    await expectConverged(config, 'uplinkd apply');
    await expectEmpty(config);

    out.script.push(runTimed('sh', ['-e', script]));
    await expectConverged(config, 'the ip script');
    await expectEmpty(config);

    out.batch.push(runTimed('ip', ['-batch', '-'], batchInput));
    await expectConverged(config, 'ip -batch');
    await expectEmpty(config);

    out.kernel.push(await sendRaw(datagrams));
    await expectConverged(config, 'the pre-encoded requests');
    await expectEmpty(config);

    out.routing.push(await timeRouting(config, commands.length));
    await expectConverged(config, 'reconcile()');
    await expectEmpty(config);
  }
  return out;
}

main(JSON.parse(process.argv[2] ?? '{}') as ApplyArgs).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`apply probe: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
