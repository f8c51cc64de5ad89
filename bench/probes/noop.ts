// Runs inside a benchmark router namespace with N static uplinks. Applies once, then times
// reconcile cycles with nothing to change as the daemon runs them on every event and resync
// (observe: snapshot from the daemon's kernel view, then lease files; plan; diff); the same cycle
// with a port that dumps the kernel each time (the daemon before the view); then the snapshot (view
// and dumps) and the lease read each alone; then each dump split into kernel round trip and decode.
// Prints one JSON line.
import { performance } from 'node:perf_hooks';
import { applyOnce } from '../../src/cli/oneshot';
import { loadConfig } from '../../src/config/load';
import { UplinkdError } from '../../src/errors';
import { observe, routeInterest } from '../../src/engine/cycle';
import { readLeases } from '../../src/facts/leases';
import { NetlinkKernelPort } from '../../src/kernel/netlink-port';
import * as C from '../../src/netlink/constants';
import { decodeAddress, decodeLink, encodeAddressDumpRequest, encodeLinkDumpRequest } from '../../src/netlink/link';
import { ifNamesFrom, type IfNames } from '../../src/netlink/names';
import { decodeNexthop, encodeNexthopDumpRequest } from '../../src/netlink/nexthop';
import { decodeRoute, encodeRouteDumpRequest } from '../../src/netlink/route';
import { decodeRule, encodeRuleDumpRequest } from '../../src/netlink/rule';
import { NetlinkClient } from '../../src/netlink/socket';
import type { ObservedPinning } from '../../src/nft/nft';
import { observedAfter, planPinning } from '../../src/nft/pinning';
import { renderPinning } from '../../src/nft/ruleset';
import { plan } from '../../src/plan/planner';
import { diff } from '../../src/reconcile/diff';

export interface NoopArgs {
  config: string;
  warmup: number;
  iterations: number;
}

export interface DumpTiming {
  what: string;
  objects: number;
  /** ms, per dump: request to last datagram received */
  dump: number[];
  /** ms, decoding those messages */
  decode: number[];
}

export interface NoopResult {
  counts: { links: number; addresses: number; routes: number; rules: number; nexthops: number };
  /** ms per cycle, the daemon's way: snapshot and lease read together, then plan, then diff */
  total: number[];
  observe: number[];
  plan: number[];
  diff: number[];
  /** ms, planPinning(): the nftables table rendered and compared with its last known state */
  pinning: number[];
  /** ms per cycle as above, but the port dumps the kernel for every snapshot (no view) */
  totalDumping: number[];
  /** ms, each alone, in separate cycles: the view's snapshot, a dumping port's snapshot, the lease files */
  snapshotAlone: number[];
  snapshotDumping: number[];
  leasesAlone: number[];
  dumps: DumpTiming[];
}

async function main(args: NoopArgs): Promise<NoopResult> {
  const config = await loadConfig(args.config);
  const applied = await applyOnce(config, () => undefined);
  if (applied.failed.length) throw new UplinkdError('lab', `apply failed: ${applied.failed[0].error.message}`);
  const port = await NetlinkKernelPort.open({ cache: true }); // as src/daemon/run.ts opens it
  const dumping = await NetlinkKernelPort.open();
  const out: NoopResult = {
    counts: { links: 0, addresses: 0, routes: 0, rules: 0, nexthops: 0 },
    total: [], observe: [], plan: [], diff: [], pinning: [], totalDumping: [], snapshotAlone: [], snapshotDumping: [], leasesAlone: [], dumps: [],
  };
  for (let i = 0; i < args.warmup + args.iterations; i++) {
    const t0 = performance.now();
    const { facts: { kernel, leases } } = await observe(dumping, config, { warn: () => undefined, nft: { known: { kind: 'absent' } } });
    const changes = diff(plan(config, { kernel, leases, health: {} }).desired, kernel, config);
    const t1 = performance.now();
    if (changes.length !== 0) throw new UplinkdError('lab', `no-op cycle (dumping) wants ${changes.length} changes`);
    if (i >= args.warmup) out.totalDumping.push(t1 - t0);
  }
  // The table as the daemon knows it after installing it (the probe does not run nft: only the planning is timed).
  const desiredTable = renderPinning(config);
  const known: ObservedPinning = desiredTable ? observedAfter({ op: 'install', ruleset: desiredTable }) : { kind: 'absent' };
  for (let i = 0; i < args.warmup + args.iterations; i++) {
    // As Daemon.cycle() does it (src/daemon/daemon.ts): the engine's observe, then plan, diff and the nftables
    // table's plan (computeCycle in src/engine/cycle.ts).
    const t0 = performance.now();
    // Between resyncs the daemon reuses the nftables table's last known state (no nft process).
    const { facts: { kernel, leases } } = await observe(port, config, { warn: () => undefined, nft: { known } });
    const t1 = performance.now();
    const p = plan(config, { kernel, leases, health: {} });
    const t2 = performance.now();
    const changes = diff(p.desired, kernel, config);
    const t3 = performance.now();
    const nft = planPinning(config, known);
    const t4 = performance.now();
    if (changes.length !== 0 || nft.change) throw new UplinkdError('lab', `no-op cycle wants ${changes.length} changes${nft.change ? ' and an nft change' : ''}`);
    if (i < args.warmup) continue;
    out.total.push(t4 - t0);
    out.observe.push(t1 - t0);
    out.plan.push(t2 - t1);
    out.diff.push(t3 - t2);
    out.pinning.push(t4 - t3);
    out.counts = {
      links: kernel.links.length, addresses: kernel.addresses.length, routes: kernel.routes.length,
      rules: kernel.rules.length, nexthops: kernel.nexthops.length,
    };
  }
  const interest = routeInterest(config);
  for (let i = 0; i < args.warmup + args.iterations; i++) {
    const t0 = performance.now();
    await port.snapshot(interest);
    const t1 = performance.now();
    await dumping.snapshot(interest);
    const t2 = performance.now();
    await readLeases(config.paths.leases);
    const t3 = performance.now();
    if (i < args.warmup) continue;
    out.snapshotAlone.push(t1 - t0);
    out.snapshotDumping.push(t2 - t1);
    out.leasesAlone.push(t3 - t2);
  }
  port.close();
  dumping.close();

  const client = new NetlinkClient();
  const links = (await client.dump(C.RTM_GETLINK, encodeLinkDumpRequest())).map((m) => decodeLink(m.payload));
  const names: IfNames = ifNamesFrom(links);
  const kinds: [string, number, Buffer, number, (p: Buffer) => unknown][] = [
    ['links', C.RTM_GETLINK, encodeLinkDumpRequest(), C.RTM_NEWLINK, decodeLink],
    ['addresses', C.RTM_GETADDR, encodeAddressDumpRequest(), C.RTM_NEWADDR, (p) => decodeAddress(p, names)],
    ['routes', C.RTM_GETROUTE, encodeRouteDumpRequest(), C.RTM_NEWROUTE, (p) => decodeRoute(p, names)],
    ['rules', C.RTM_GETRULE, encodeRuleDumpRequest(), C.RTM_NEWRULE, decodeRule],
    ['nexthops', C.RTM_GETNEXTHOP, encodeNexthopDumpRequest(), C.RTM_NEWNEXTHOP, (p) => decodeNexthop(p, names)],
  ];
  for (const [what, type, req, msgType, decode] of kinds) {
    const d: DumpTiming = { what, objects: 0, dump: [], decode: [] };
    for (let i = 0; i < args.warmup + args.iterations; i++) {
      const t0 = performance.now();
      const msgs = await client.dump(type, req);
      const t1 = performance.now();
      let n = 0;
      for (const m of msgs) if (m.type === msgType && decode(m.payload) !== undefined) n++;
      const t2 = performance.now();
      if (i < args.warmup) continue;
      d.dump.push(t1 - t0);
      d.decode.push(t2 - t1);
      d.objects = n;
    }
    out.dumps.push(d);
  }
  client.close();
  return out;
}

main(JSON.parse(process.argv[2] ?? '{}') as NoopArgs).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`noop probe: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
