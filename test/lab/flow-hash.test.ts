// A forwarded flow keeps its uplink when its sender's TCP times out (without flow pinning).
// A LAN sender behind a veth (a container, a VM's tap, this lab's LAN host) hands the router its
// socket's flow hash with each packet; Linux TCP picks a new one at every retransmission timeout
// (sk_rethink_txhash, net.core.txrehash). Under fib_multipath_hash_policy 1 the kernel takes that
// hash as it is, so a flow that stalls for a second moves to another uplink in the middle, where
// masquerade drops its conntrack entry and the server resets it. With `multipath_hash: l4` uplinkd
// hashes the 5-tuple itself (policy 3, docs/configuration.md): the same flow, the same uplink.
// Real traffic: TCP streams from the LAN host, a 3 s total loss on isp1's provider (nftables),
// the LAN host's retransmission timeouts counted by the kernel (TcpExtTcpTimeoutRehash).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inNs, sleep, waitFor } from '../../lab/exec';
import { clearLoss, lossDropped, randomLoss } from '../../lab/faults';
import { labDown } from '../../lab/lab';
import { openStream, startStreamServer, type Stream } from '../../lab/stream';
import type { LabInfo } from '../../lab/topology';
import { apply, freshLab, NEEDS_ROOT, writeConfig } from './support';

const PREFIX = `ufh${process.pid % 1000}-`;
const STREAMS = 4;

/** The kernel's count of TCP flow-hash changes after a retransmission timeout in namespace `ns`. */
async function timeoutRehashes(ns: string): Promise<number> {
  const r = await inNs(ns, 'nstat', ['-az', 'TcpExtTcpTimeoutRehash']);
  return Number(/TcpExtTcpTimeoutRehash\s+(\d+)/.exec(r.stdout)?.[1] ?? NaN);
}

/** The reply destinations (the masqueraded source) of the router's conntrack entries to `port`. */
async function natSources(ns: string, port: number): Promise<string[]> {
  const r = await inNs(ns, 'conntrack', ['-L', '-p', 'tcp', '--dport', String(port)], { allowFail: true });
  return r.stdout.split('\n').filter((l) => /ESTABLISHED/.test(l)).map((l) => [...l.matchAll(/dst=(\S+)/g)][1]?.[1] ?? '?');
}

describe('multipath hash of forwarded flows (5-tuple, not the sender\'s socket hash)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  const streams: Stream[] = [];
  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    await startStreamServer(lab.ns.inet);
  });
  after(async () => {
    for (const s of streams) await s.stop();
    await labDown(PREFIX);
  });

  /** Opens STREAMS streams through isp1, stalls isp1 for 3 s, waits for them to flow again; the streams' ends and what the kernel counted. */
  const stallStreams = async () => {
    const isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    const mine: Stream[] = [];
    for (let i = 0; i < STREAMS; i++) mine.push(await openStream(lab.ns.lan, lab.internetHost, isp1.address));
    streams.push(...mine);
    await waitFor('the streams to flow', async () => (mine.every((s) => s.latest().received > 20_000) ? true : undefined), 30_000, 100);
    const rehashedBefore = await timeoutRehashes(lab.ns.lan);
    await randomLoss(lab, 'isp1', 100);
    let dropped = NaN;
    try {
      await sleep(3_000);
      dropped = await lossDropped(lab, 'isp1');
    } finally {
      await clearLoss(lab, 'isp1').catch(() => undefined);
    }
    const atRepair = mine.map((s) => s.latest().received);
    // After 3 s of loss the senders' next retransmission is at most ~3.2 s away (RTO backoff from 200 ms).
    await waitFor('every stream to receive again, or one to end', async () =>
      mine.some((s) => s.end()) || mine.every((s, i) => s.latest().received > atRepair[i] + 20_000) ? true : undefined, 20_000, 100);
    const ended = mine.map((s) => s.end()).filter(Boolean);
    const sources = await natSources(lab.ns.router, 8090);
    for (const s of mine) await s.stop();
    return { isp1, ended, sources, dropped, rehashes: (await timeoutRehashes(lab.ns.lan)) - rehashedBefore };
  };

  it('without pinning, LAN streams through isp1 survive a 3 s stall of isp1 that makes their sender time out and re-hash', async (t) => {
    await apply(lab, await writeConfig(lab, 'unpinned.yaml', { extra: 'pinning: {enabled: false}' }));
    const policy = (await inNs(lab.ns.router, 'cat', ['/proc/sys/net/ipv4/fib_multipath_hash_policy'])).stdout.trim();
    const fields = (await inNs(lab.ns.router, 'cat', ['/proc/sys/net/ipv4/fib_multipath_hash_fields'])).stdout.trim();
    t.diagnostic(`fib_multipath_hash_policy ${policy}, fib_multipath_hash_fields ${fields}`);
    const { isp1, ended, sources, dropped, rehashes } = await stallStreams();
    t.diagnostic(`${rehashes} timeout re-hashes at the LAN host, ${dropped} packets dropped in isp1's provider`);
    // The stall was real: the senders timed out and took new socket hashes.
    assert.ok(rehashes >= STREAMS, `only ${rehashes} timeout re-hashes at the LAN host`);
    assert.deepEqual(ended, [], 'a stream was reset');
    assert.deepEqual(sources, Array(STREAMS).fill(isp1.address), 'every stream still leaves through isp1');
  });

  it('control: under fib_multipath_hash_policy 1 the same stall moves streams to isp2, and masquerade resets them', async (t) => {
    await inNs(lab.ns.router, 'sysctl', ['-qw', 'net.ipv4.fib_multipath_hash_policy=1']);
    const { ended, rehashes } = await stallStreams();
    t.diagnostic(`${rehashes} timeout re-hashes, ${ended.length} of ${STREAMS} streams reset`);
    assert.ok(ended.length > 0, `no stream moved in ${rehashes} re-hashes (weights 1:3: each re-hash stays on isp1 with probability 1/4)`);
  });
});
