// Issue 7 (c9): a refused nexthop must not take the balanced default from the other uplinks, and foreign objects in
// uplinkd's slots must never be used by it nor pass as "kernel matches the plan". A real daemon and kernel in a
// namespace of its own; `ip route get` per destination shows where traffic really goes.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type RunningDaemon } from '../../lab/daemon';
import { ipIn, waitFor } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `c9${process.pid % 1000}-`;
const NS = `${PREFIX}x`;
const STATE = `${stateDirOf(PREFIX)}x`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');
const ROGUE = '198.51.100.50';

const TEXT = [
  'uplinks:',
  // 198.51.100.127 is the broadcast address of the kernel's /25 on up1: the kernel refuses that nexthop.
  '  - {name: isp1, interface: up1, address: 198.51.100.2/24, gateway: 198.51.100.127, table: 1141}',
  '  - {name: isp2, interface: up2, address: 203.0.113.2/24, gateway: 203.0.113.1, table: 1727, weight: 3}',
  'pinning: {enabled: false}',
  'daemon: {debounce: 5ms, resync_interval: 1s}',
  ...statePaths(STATE),
  '',
].join('\n');

interface Status {
  inSync: boolean;
  collisions?: string[];
  uplinks: { name: string; inDefault: boolean; refused?: string[]; collisions?: string[]; reason: string }[];
}

async function status(): Promise<Status> {
  const r = await uplinkd(NS, ['status', '--json', '-c', CONFIG]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Status;
}

/** The gateway (or 'unreachable') `ip route get` gives for 40 destinations in 192.0.2.0/24 and 100.64.0.0/16. */
async function gateways(): Promise<string[]> {
  const out: string[] = [];
  for (let i = 1; i <= 40; i++) {
    const dst = i <= 20 ? `192.0.2.${i * 11}` : `100.64.${i * 5}.${i}`;
    const r = await ipIn(NS, ['-j', 'route', 'get', dst], { allowFail: true });
    out.push(r.code === 0 ? (JSON.parse(r.stdout) as { gateway?: string }[])[0]?.gateway ?? 'direct' : 'unreachable');
  }
  return out;
}

const count = (list: string[], value: string): number => list.filter((g) => g === value).length;

describe('refused and foreign objects never take the balanced default or pass as in sync (issue 7, c9)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    await vethNamespace(NS, STATE, [['up1', '198.51.100.2/25'], ['up2', '203.0.113.2/24']]);
    await fs.writeFile(CONFIG, TEXT);
  });
  after(() => removeDaemonNamespace(daemon, CONFIG, NS, STATE));

  it('1: isp1\'s nexthop refused: isp2 carries every destination; once the kernel accepts it, isp1 joins', async () => {
    daemon = await startDaemon(NS, CONFIG);
    const s = await waitFor('isp1 refused, isp2 in the default', async () => {
      const st = await status();
      return st.uplinks.find((u) => u.name === 'isp1')?.refused && st.uplinks.find((u) => u.name === 'isp2')?.inDefault ? st : undefined;
    }, 20_000);
    assert.match(s.uplinks.find((u) => u.name === 'isp1')!.refused!.join(), /EINVAL/);
    assert.equal(s.inSync, false);
    const via = await gateways();
    assert.equal(count(via, '203.0.113.1'), 40, `every destination via isp2: ${via.join(' ')}`);
    // The kernel's /24 now: the gateway is valid, the retried nexthop is accepted and isp1 joins the group.
    await ipIn(NS, ['addr', 'del', '198.51.100.2/25', 'dev', 'up1']);
    await ipIn(NS, ['addr', 'add', '198.51.100.2/24', 'dev', 'up1']);
    await waitFor('in sync with isp1 in the default', async () => {
      const st = await status();
      return st.inSync && st.uplinks.every((u) => u.inDefault) ? st : undefined;
    }, 30_000);
    const both = await gateways();
    assert.ok(count(both, '198.51.100.127') > 0 && count(both, '203.0.113.1') > 0, `balanced over both: ${both.join(' ')}`);
  });

  it('2a: a foreign nexthop with isp1\'s id is never used by uplinkd\'s group; status names the collision', async () => {
    // Replaced in place by another program (proto static): the id is no longer uplinkd's.
    await ipIn(NS, ['nexthop', 'replace', 'id', '1141', 'via', ROGUE, 'dev', 'up1', 'proto', 'static']);
    const s = await waitFor('the collision in status', async () => {
      const st = await status();
      return st.collisions?.length ? st : undefined;
    }, 20_000);
    assert.equal(s.inSync, false);
    assert.match(s.collisions!.join(), /^isp1: foreign nexthop 'id 1141 via 198\.51\.100\.50/);
    assert.match(s.uplinks.find((u) => u.name === 'isp1')!.reason, /blocked by collision/);
    const text = await uplinkd(NS, ['status', '-c', CONFIG]);
    assert.match(text.stdout, /kernel does NOT match the plan/);
    assert.doesNotMatch(text.stdout, /kernel matches the plan/);
    const group = (await ipIn(NS, ['nexthop', 'show', 'id', '1000'])).stdout;
    assert.doesNotMatch(group, /1141/, group);
    const via = await gateways();
    assert.equal(count(via, ROGUE), 0, `never via the foreign gateway: ${via.join(' ')}`);
    assert.equal(count(via, '203.0.113.1'), 40, via.join(' '));
    // The foreign nexthop goes: uplinkd's own comes back and isp1 rejoins.
    await ipIn(NS, ['nexthop', 'del', 'id', '1141']);
    await waitFor('in sync again', async () => ((await status()).inSync ? true : undefined), 30_000);
    assert.match((await ipIn(NS, ['nexthop', 'show', 'id', '1000'])).stdout, /1141/);
  });

  it('2b: a foreign default in isp1\'s table blocks isp1 in status (text and JSON), logged once while it stays', async () => {
    await ipIn(NS, ['route', 'replace', 'default', 'via', ROGUE, 'dev', 'up1', 'table', '1141', 'proto', 'static']);
    const s = await waitFor('the collision in status', async () => {
      const st = await status();
      return st.collisions?.length ? st : undefined;
    }, 20_000);
    assert.equal(s.inSync, false);
    assert.match(s.uplinks.find((u) => u.name === 'isp1')!.collisions!.join(), /foreign route 'default via 198\.51\.100\.50 dev up1 table 1141 proto static'/);
    // The harm status now admits: isp1's replies leave through the foreign gateway.
    const reply = JSON.parse((await ipIn(NS, ['-j', 'route', 'get', '192.0.2.9', 'from', '198.51.100.2'])).stdout) as { gateway?: string }[];
    assert.equal(reply[0]!.gateway, ROGUE);
    const text = await uplinkd(NS, ['status', '-c', CONFIG]);
    assert.match(text.stdout, /kernel does NOT match the plan/);
    assert.match(text.stdout, /^isp1 .*blocked by collision/m);
    // Several periodic resyncs (1 s) later the collision has been logged once.
    await new Promise((r) => setTimeout(r, 3_500));
    const logged = daemon!.lines.filter((l) => /event=plan .*collision: foreign route 'default via 198\.51\.100\.50/.test(l));
    assert.equal(logged.length, 1, logged.join('\n'));
    await ipIn(NS, ['route', 'del', 'default', 'table', '1141', 'proto', 'static']);
    await waitFor('in sync again', async () => ((await status()).inSync ? true : undefined), 30_000);
    const back = JSON.parse((await ipIn(NS, ['-j', 'route', 'get', '192.0.2.9', 'from', '198.51.100.2'])).stdout) as { gateway?: string }[];
    assert.equal(back[0]!.gateway, '198.51.100.127');
  });

  it('2c: a foreign rule at uplinkd\'s priority, before uplinkd\'s in the kernel\'s order: warned truthfully, status does not match', async () => {
    // Added after uplinkd's rule of the same priority, then uplinkd's deleted: uplinkd re-adds its own after the foreign one.
    await ipIn(NS, ['rule', 'add', 'priority', '10100', 'from', '198.51.100.2', 'lookup', '1727']);
    await ipIn(NS, ['rule', 'del', 'priority', '10100', 'from', '198.51.100.2', 'lookup', '1141']);
    const s = await waitFor('the collision in status', async () => {
      const st = await status();
      return st.collisions?.length ? st : undefined;
    }, 20_000);
    assert.equal(s.inSync, false);
    assert.match(s.uplinks.find((u) => u.name === 'isp1')!.collisions!.join(), /foreign rule 'from 198\.51\.100\.2\/32 lookup 1727 priority 10100[^']*' comes before uplinkd's rule for split access/);
    const rules = (await ipIn(NS, ['rule', 'show', 'priority', '10100'])).stdout;
    assert.ok(rules.indexOf('lookup 1727') < rules.indexOf('lookup 1141'), rules);
    // The harm: isp1's replies are routed by isp2's table.
    const reply = JSON.parse((await ipIn(NS, ['-j', 'route', 'get', '192.0.2.9', 'from', '198.51.100.2'])).stdout) as { gateway?: string }[];
    assert.equal(reply[0]!.gateway, '203.0.113.1');
    // The latest word on it (while it came after uplinkd's rule, the first warning said, truly, that it changed nothing).
    const warning = daemon!.lines.filter((l) => /event=plan .*admin rule 'from 198\.51\.100\.2\/32 lookup 1727/.test(l)).at(-1) ?? '';
    assert.match(warning, /comes before flow pinning and split access/);
    assert.doesNotMatch(warning, /routed by uplinkd's earlier rules first/);
    await ipIn(NS, ['rule', 'del', 'priority', '10100', 'from', '198.51.100.2', 'lookup', '1727']);
    await waitFor('in sync again', async () => ((await status()).inSync ? true : undefined), 30_000);
  });
});
