// Runs inside a benchmark router namespace where `uplinkd run` keeps `table ip uplinkd`. Listens to nf_tables
// notifications itself (NETLINK_NETFILTER, NFNLGRP_NFTABLES) and, `reps` times, deletes the table with
// `nft delete table ip uplinkd`: the time from the kernel's notification of the delete to that of the daemon's
// re-created table, both as this process receives them. Then changes other tables (`table inet bench_fw`,
// `table ip bench_nat`) with one `nft -f -` batch after another for `churnMs`, and counts the batches.
// Prints one JSON line.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { decodeNftNotification, NFNLGRP_NFTABLES, NFPROTO } from '../../src/netlink/nftables';
import { subscribe } from '../../src/netlink/socket';
import { openNetfilterSocket } from '../../src/nft/events';

export interface NftRestoreArgs {
  reps: number;
  /** Pause after each restore, so the daemon's own verification cycle is over (ms). */
  gapMs: number;
  churnMs: number;
  timeoutMs: number;
}

export interface NftRestoreResult {
  /** ms from the delete's notification to the re-created table's, per repetition. */
  restoreMs: number[];
  timeouts: number;
  /** Foreign batches committed during the churn, and how long it ran (ms). */
  batches: number;
  churnMs: number;
}

function nft(args: string[], input?: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('nft', args, { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('close', resolve);
    child.stdin.end(input ?? '');
  });
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as NftRestoreArgs;
  let deletedAt: number | undefined;
  /** Called with the ms from the delete's notification to the re-created table's. */
  let waiter: ((ms: number) => void) | undefined;
  const sub = subscribe([NFNLGRP_NFTABLES], (messages) => {
    const now = performance.now();
    for (const m of messages) {
      const n = decodeNftNotification(m);
      if (n.kind !== 'object' || n.family !== NFPROTO.IPV4 || n.table !== 'uplinkd') continue;
      // Our delete's notification; then the first table the daemon's batch creates (its script creates, deletes
      // and re-creates the table in one transaction, all in one datagram here).
      if (n.msg === 'deltable' && deletedAt === undefined) deletedAt = now;
      else if (n.msg === 'newtable' && deletedAt !== undefined) waiter?.(now - deletedAt);
    }
  }, (reason) => process.stderr.write(`nft-restore: ${reason}\n`), (e) => process.stderr.write(`nft-restore: ${e.message}\n`), { socket: openNetfilterSocket });
  const result: NftRestoreResult = { restoreMs: [], timeouts: 0, batches: 0, churnMs: 0 };
  try {
    for (let i = 0; i < args.reps; i++) {
      deletedAt = undefined;
      const back = new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), args.timeoutMs);
        waiter = (ms) => {
          waiter = undefined;
          clearTimeout(timer);
          resolve(ms);
        };
      });
      if ((await nft(['delete', 'table', 'ip', 'uplinkd'])) !== 0) throw new Error('nft delete table ip uplinkd failed');
      const ms = await back;
      waiter = undefined;
      if (ms === undefined) result.timeouts++;
      else result.restoreMs.push(ms);
      await new Promise((r) => setTimeout(r, args.gapMs));
    }
    const start = performance.now();
    for (let i = 0; performance.now() - start < args.churnMs; i++) {
      const batch = [
        'add table inet bench_fw',
        `add chain inet bench_fw c${i % 50} { type filter hook forward priority 0; policy accept; }`,
        `add rule inet bench_fw c${i % 50} ip saddr 192.0.2.${i % 250} counter drop`,
        'add table ip bench_nat',
        i % 10 === 9 ? 'flush table ip bench_nat' : `add set ip bench_nat s${i % 20} { type ipv4_addr; }`,
        ...(i % 50 === 49 ? ['delete table inet bench_fw'] : []),
      ];
      if ((await nft(['-f', '-'], `${batch.join('\n')}\n`)) !== 0) throw new Error(`foreign batch ${i} refused`);
      result.batches++;
    }
    result.churnMs = performance.now() - start;
    await nft(['-f', '-'], 'table inet bench_fw\ndelete table inet bench_fw\ntable ip bench_nat\ndelete table ip bench_nat\n');
  } finally {
    sub.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
