// Faults a fresh user test found (s10): foreign `not` rules and suppress_prefixlength rules before uplinkd's band
// judged by what the kernel really does. A router namespace with one uplink whose gateway (198.51.100.1) lives in a
// peer namespace; real pings with a pinning mark show where the kernel sends them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as path from 'node:path';
import { inNs, ipIn, ipJson, run } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeNamespace, vethNamespace } from './support';
import { promises as fs } from 'node:fs';

const PREFIX = `u10f${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const PEER = `${PREFIX}p`;
const STATE = `${stateDirOf(PREFIX)}r`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');

const TEXT = [
  'uplinks:',
  '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1}',
  'paths:',
  `  rt_tables: ${STATE}/rt_tables.conf`,
  `  rt_protos: ${STATE}/rt_protos.conf`,
  `  control_socket: ${STATE}/control.sock`,
  `  hooks_dir: ${STATE}/hooks.d`,
  `  leases: ["${STATE}/leases/*.lease"]`,
  '',
].join('\n');

/** Whether 3 pings from the router with packet mark `mark` (SO_MARK) reach the gateway in the peer namespace. */
async function pingWithMark(mark: number): Promise<boolean> {
  const r = await inNs(NS, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', '-m', String(mark), '198.51.100.1'], { allowFail: true });
  return r.code === 0;
}

describe('foreign rules before uplinkd\'s band', { skip: NEEDS_ROOT }, () => {
  let pinMark = 0;
  before(async () => {
    await run('ip', ['netns', 'del', PEER], { allowFail: true });
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24']]);
    await run('ip', ['netns', 'add', PEER]);
    await ipIn(NS, ['link', 'set', 'wan0p', 'netns', PEER]);
    await ipIn(PEER, ['addr', 'add', '198.51.100.1/24', 'dev', 'wan0p']);
    await ipIn(PEER, ['link', 'set', 'wan0p', 'up']);
    await ipIn(PEER, ['link', 'set', 'lo', 'up']);
    await fs.writeFile(CONFIG, TEXT);
    const applied = await uplinkd(NS, ['apply', '-c', CONFIG]);
    assert.equal(applied.code, 0, applied.stderr);
    const pinned = (await ipJson<{ fwmark?: string; protocol?: string }>(NS, ['rule', 'show'])).find((r) => r.fwmark !== undefined);
    assert.ok(pinned, 'no pinning rule');
    pinMark = Number(pinned.fwmark);
  });
  after(async () => {
    await run('ip', ['netns', 'del', PEER], { allowFail: true });
    await removeNamespace(NS, STATE);
  });

  it('`not fwmark 51820 lookup 51820` at 10049 takes the pinned packets, and plan says it shadows flow pinning', async () => {
    assert.ok(await pingWithMark(pinMark), 'a pinned ping should reach the gateway before the foreign rule');
    await ipIn(NS, ['route', 'add', 'unreachable', 'default', 'table', '51820']);
    await ipIn(NS, ['rule', 'add', 'not', 'fwmark', '51820', 'table', '51820', 'priority', '10049']);
    try {
      // The kernel: a packet with the pinning mark lacks mark 51820, so the `not` rule sends it to table 51820.
      assert.equal(await pingWithMark(pinMark), false, 'the not rule should take pinned packets');
      assert.ok(await pingWithMark(51820), 'a packet with mark 51820 passes the not rule');
      const plan = await uplinkd(NS, ['plan', '-c', CONFIG]);
      const text = plan.stdout + plan.stderr;
      const line = text.split('\n').find((l) => l.includes("admin rule 'not from all fwmark 0xca6c")) ?? '';
      assert.match(line, /a `not` rule: it matches every packet its selectors do not/, text);
      assert.match(line, /port-forward replies and established connections it matches leave by table 51820/);
      assert.match(line, /shadows pinning/);
      assert.doesNotMatch(line, /matches none of their packets/);
    } finally {
      await ipIn(NS, ['rule', 'del', 'priority', '10049'], { allowFail: true });
      await ipIn(NS, ['route', 'del', 'unreachable', 'default', 'table', '51820'], { allowFail: true });
    }
  });

  it('`lookup main suppress_prefixlength 0` at 10048 gets a message that says what it lets through', async () => {
    await ipIn(NS, ['rule', 'add', 'table', 'main', 'suppress_prefixlength', '0', 'priority', '10048']);
    try {
      // Main's connected route (/24, longer than /0) still decides for the gateway: the pinned ping gets there.
      assert.ok(await pingWithMark(pinMark));
      const plan = await uplinkd(NS, ['plan', '-c', CONFIG]);
      const line = (plan.stdout + plan.stderr).split('\n').find((l) => l.includes('suppress_prefixlength 0 priority 10048')) ?? '';
      assert.match(line, /admin rule '[^']+': \S/);
      assert.match(line, /longer than \/0 \(suppress_prefixlength 0 lets the others through\)/);
    } finally {
      await ipIn(NS, ['rule', 'del', 'priority', '10048'], { allowFail: true });
    }
  });
});
