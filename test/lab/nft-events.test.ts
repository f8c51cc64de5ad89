// Issue 7: the daemon follows nftables change notifications, so `table ip uplinkd` (flow pinning) taken by
// someone else (`nft delete table`, `nft flush ruleset` in a firewall reload) is back at once, not at the
// periodic resync (an hour here, so it cannot be that), logged as drift; the restored table pins real LAN
// flows; other tables' changes (the same name in another family among them) start no cycle, and our own
// restore's notifications end in one quiet cycle, not a loop. Real kernel, real nft, the lab's namespaces.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load';
import { queryDaemon } from '../../src/daemon/control-client';
import type { DaemonStatus } from '../../src/daemon/daemon';
import { pinMarks } from '../../src/nft/marks';
import { daemonConfig, startDaemon, stopDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { inNs, sleep, waitFor } from '../../lab/exec';
import { installRules } from '../../lab/firewall';
import { labDown, routerNat } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { startTcpEcho, tcpTally } from '../../lab/traffic';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `n9${process.pid % 1000}-`;
const ECHO_PORT = 8097;
const MARK_MASK = 0x7f000000;

async function hasOurTable(ns: string): Promise<boolean> {
  const r = await inNs(ns, 'nft', ['list', 'tables']);
  return r.stdout.split('\n').some((l) => l.trim() === 'table ip uplinkd');
}

describe('nftables notifications (issue 7)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let daemon: RunningDaemon;
  let socket: string;
  const status = async (): Promise<DaemonStatus> => (await queryDaemon(socket, { cmd: 'status' })) as DaemonStatus;
  /** The daemon's cycle count once it has stayed the same for `quietMs`. */
  const settled = async (quietMs = 700): Promise<number> => {
    let last = (await status()).cycles;
    for (let stable = 0; stable < quietMs; stable += 100) {
      await sleep(100);
      const now = (await status()).cycles;
      if (now !== last) [last, stable] = [now, -100];
    }
    return last;
  };
  const nftApplies = () => daemon.lines.filter((l) => /event=apply change="nft /.test(l));

  /** Takes the table away with `how`, waits for it to come back; returns the apply line that restored it. */
  async function takeAndWait(how: () => Promise<unknown>, t: { diagnostic(s: string): void }): Promise<string> {
    const before = nftApplies().length;
    const cycles = await settled();
    const at = Date.now();
    await how();
    await waitFor('table ip uplinkd to come back', async () => ((await hasOurTable(lab.ns.router)) ? true : undefined), 10_000, 10);
    t.diagnostic(`table ip uplinkd back ${Date.now() - at} ms after it was taken (resync interval: 1 h)`);
    const line = await waitFor('the restoring apply line', async () => nftApplies()[before], 5_000, 20);
    // The restore, then one cycle for its own notifications that finds the table in place: then nothing.
    const after = await settled();
    assert.ok(after - cycles <= 3, `${after - cycles} cycles for one restore`);
    assert.equal(nftApplies().length, before + 1, `one restore, no loop:\n${nftApplies().join('\n')}`);
    return line;
  }

  /** `count` LAN flows through the router: each is pinned (conntrack mark) to the uplink it was NATed to. */
  async function assertPinnedTraffic(count: number): Promise<void> {
    const marks = pinMarks(parseConfig(await fs.readFile(lab.configPath, 'utf8'), lab.configPath));
    await inNs(lab.ns.router, 'conntrack', ['-D', '-p', 'tcp', '--dport', String(ECHO_PORT)], { allowFail: true });
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, ECHO_PORT, { count, concurrency: 4 });
    assert.equal(tally.failed, 0, JSON.stringify(tally.errors));
    const flows = (await inNs(lab.ns.router, 'conntrack', ['-L', '-p', 'tcp', '--dport', String(ECHO_PORT)], { allowFail: true })).stdout
      .split('\n').filter((l) => l.includes(`dport=${ECHO_PORT}`));
    assert.ok(flows.length >= count, `${flows.length} conntrack entries for ${count} flows`);
    for (const f of flows) {
      const uplink = lab.uplinks.find((u) => f.includes(`dst=${u.address} `));
      assert.ok(uplink, `not NATed to an uplink: ${f}`);
      const mark = Number(/mark=(\d+)/.exec(f)?.[1] ?? 0);
      const want = marks.find((m) => m.uplink === uplink.name)!.mark;
      assert.equal(mark & MARK_MASK, want, `flow via ${uplink.name} not pinned to its mark 0x${want.toString(16)}: ${f}`);
    }
  }

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    await startTcpEcho(lab.ns.inet, ECHO_PORT);
    socket = path.join(lab.stateDir, 'nft-events.sock');
    const file = path.join(lab.stateDir, 'nft-events.yaml');
    await fs.writeFile(file, daemonConfig(lab, socket).replace('resync_interval: 5s', 'resync_interval: 1h'));
    daemon = await startDaemon(lab.ns.router, file, undefined, 'debug');
    await waitForLine(daemon, /event=apply change="nft -f - <<< 'table ip uplinkd/, 5_000);
    assert.ok(await hasOurTable(lab.ns.router));
  });
  after(async () => {
    try {
      if (daemon) {
        await stopDaemon(daemon, 'SIGTERM');
        assert.equal(daemon.child.exitCode, 0, daemon.lines.join('\n'));
      }
    } finally {
      await labDown(PREFIX);
    }
  });

  it('status says the table is followed by notifications; the start-up install made no loop', async () => {
    await settled();
    assert.match((await status()).pinning, /^flow pinning: in place at the last check .* \(changes followed by nftables notifications\)/);
    assert.equal(nftApplies().length, 1, nftApplies().join('\n'));
    assert.ok(!daemon.lines.some((l) => /event=nft-events/.test(l)), 'the notifications could be had');
  });

  it('`nft delete table ip uplinkd`: back at once, logged as drift with the process that took it; flows are pinned again', async (t) => {
    const line = await takeAndWait(() => inNs(lab.ns.router, 'nft', ['delete', 'table', 'ip', 'uplinkd']), t);
    assert.match(line, /cause="[^"]*nftables: table ip uplinkd changed \([^)]*deltable[^)]*\) by nft\[\d+\]/);
    assert.match(line, /reason="drift/);
    await assertPinnedTraffic(12);
  });

  it('`nft flush ruleset` (a firewall reload that then loads its own tables): back at once, as drift; flows pinned', async (t) => {
    const line = await takeAndWait(async () => {
      await inNs(lab.ns.router, 'nft', ['flush', 'ruleset']);
      // The admin's firewall reloads its own table (the lab's LAN masquerade).
      await installRules(lab.ns.router, 'nft', [routerNat(lab.uplinks.map((u) => u.interface))]);
    }, t);
    assert.match(line, /cause="[^"]*nftables: table ip uplinkd changed/);
    assert.match(line, /reason="drift/);
    await assertPinnedTraffic(12);
  });

  /** Makes a change to our table with `nft`; waits until the daemon replaced the table; returns the apply line. */
  async function changedAndReplaced(args: string[], t: { diagnostic(s: string): void }): Promise<string> {
    const before = nftApplies().length;
    await settled();
    const at = Date.now();
    await inNs(lab.ns.router, 'nft', args);
    const line = await waitFor('the replacing apply line', async () => nftApplies()[before], 10_000, 10);
    t.diagnostic(`${args.join(' ')}: replaced ${Date.now() - at} ms after`);
    await settled();
    assert.equal(nftApplies().length, before + 1, `one replace, no loop:\n${nftApplies().join('\n')}`);
    return line;
  }

  it('a rule added to a chain of ours, a chain\'s policy set to drop, a set added, the table made dormant: the table is replaced each time, at once unless the conflict limit holds one back', async (t) => {
    let line = await changedAndReplaced(['add', 'rule', 'ip', 'uplinkd', 'output', 'counter'], t);
    assert.match(line, /cause="[^"]*nftables: table ip uplinkd changed \(newrule\)/);
    assert.doesNotMatch((await inNs(lab.ns.router, 'nft', ['list', 'chain', 'ip', 'uplinkd', 'output'])).stdout, /^\s*counter packets/m, 'the foreign rule is gone');
    // `policy drop` on our prerouting chain would drop every forwarded packet: the rules are intact, the chain is not.
    line = await changedAndReplaced(['add', 'chain', 'ip', 'uplinkd', 'prerouting', '{ type filter hook prerouting priority mangle; policy drop; }'], t);
    assert.match(line, /cause="[^"]*nftables: table ip uplinkd changed \(newchain\)/);
    assert.match((await inNs(lab.ns.router, 'nft', ['list', 'chain', 'ip', 'uplinkd', 'prerouting'])).stdout, /policy accept;/);
    line = await changedAndReplaced(['add', 'set', 'ip', 'uplinkd', 'n9set', '{ type ipv4_addr; }'], t);
    assert.match(line, /cause="[^"]*nftables: table ip uplinkd changed \(newset\)/);
    assert.doesNotMatch((await inNs(lab.ns.router, 'nft', ['list', 'table', 'ip', 'uplinkd'])).stdout, /n9set/);
    // `flags dormant` switches the whole table off and keeps every rule and chain as it was.
    // (The sixth restoration within 10 s: the conflict limit may hold it back 2 s, then its backoff's end applies it.)
    line = await changedAndReplaced(['add', 'table', 'ip', 'uplinkd', '{ flags dormant; }'], t);
    assert.match(line, /cause="[^"]*(nftables: table ip uplinkd changed \(newtable\)|conflict backoff over for nft -f -)/);
    assert.doesNotMatch((await inNs(lab.ns.router, 'nft', ['list', 'table', 'ip', 'uplinkd'])).stdout, /dormant/);
    await assertPinnedTraffic(8);
  });

  it('other tables changed over and over (the same name in family inet among them) start no cycle and no nft process', async () => {
    const cycles = await settled();
    const lists = daemon.lines.filter((l) => /event=cycle /.test(l)).length;
    for (let i = 0; i < 30; i++) {
      await inNs(lab.ns.router, 'nft', ['-f', '-'], {
        input: [
          `add table inet uplinkd`,
          `add chain inet uplinkd c${i} { type filter hook forward priority 0; policy accept; }`,
          `add rule inet uplinkd c${i} counter`,
          `add table ip n9fw`,
          `add chain ip n9fw input { type filter hook input priority 0; policy accept; }`,
          `add rule ip n9fw input ip saddr 192.0.2.${i} counter drop`,
          i % 2 === 0 ? 'flush table ip n9fw' : `add set ip n9fw s${i} { type ipv4_addr; elements = { 192.0.2.${i} } }`,
        ].join('\n') + '\n',
      });
    }
    await inNs(lab.ns.router, 'nft', ['-f', '-'], { input: 'delete table inet uplinkd\ndelete table ip n9fw\n' });
    assert.equal(await settled(1_000), cycles, 'no cycle for other tables');
    assert.equal(daemon.lines.filter((l) => /event=cycle /.test(l)).length, lists);
    assert.ok(await hasOurTable(lab.ns.router));
  });
});
