// The netlink request path against the real kernel (root, a throwaway network namespace): thousands of
// route changes through one NetlinkClient, most sent without NLM_F_ACK, many in flight. Each refusal
// comes back as its own change's errno; a burst of answers that overflows the receive buffer (ENOBUFS)
// never passes a refused change off as done.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { inNs, ipIn, run } from '../../lab/exec';
import type { Route } from '../../src/model/types';
import type { WindowChildArgs, WindowChildResult } from '../support/window-child';
import { NEEDS_ROOT } from './support';

const PREFIX = `a8${process.pid % 1000}-`;
const NS = `${PREFIX}win`;
const CHILD = path.join(__dirname, '..', 'support', 'window-child.js');

const unreachable = (table: number, i: number): Route =>
  ({ table, dst: `10.${i >> 8}.${i & 255}.0/24`, type: 'unreachable', protocol: 117, scope: 'universe' });

async function child(args: WindowChildArgs): Promise<WindowChildResult> {
  await ipIn(NS, ['route', 'flush', 'table', '250'], { allowFail: true }); // where the child's last request adds its route (absent at first)
  const r = await inNs(NS, process.execPath, [CHILD], { input: JSON.stringify(args), timeoutMs: 120_000, allowFail: true });
  assert.equal(r.code, 0, `window child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as WindowChildResult;
}

async function routeCount(table: number): Promise<number> {
  const r = await ipIn(NS, ['route', 'show', 'table', String(table)]);
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

test('request window (real kernel)', { skip: NEEDS_ROOT }, async (t) => {
  before(async () => {
    await run('ip', ['netns', 'del', NS], { allowFail: true });
    await run('ip', ['netns', 'add', NS]);
    await ipIn(NS, ['link', 'set', 'lo', 'up']);
  });
  after(async () => {
    await run('ip', ['netns', 'del', NS], { allowFail: true });
  });

  await t.test('3000 adds, every 10th already there: exactly those are EEXIST, all 3000 routes are in the table', async () => {
    const batch = Array.from({ length: 300 }, (_, k) => `route add unreachable 10.${(10 * k) >> 8}.${(10 * k) & 255}.0/24 table 100 proto 117`);
    await ipIn(NS, ['-batch', '-'], { input: batch.join('\n') + '\n' });
    const r = await child({ changes: Array.from({ length: 3000 }, (_, i) => ({ op: 'add' as const, route: unreachable(100, i) })) });
    assert.ok(r.window > 208, `root raises the receive buffer past rmem_max: window ${r.window}`);
    const refused = r.outcomes.flatMap((o, i) => (o === 'ok' ? [] : [`${i}:${o}`]));
    assert.deepEqual(refused, Array.from({ length: 300 }, (_, k) => `${10 * k}:EEXIST`));
    assert.equal(r.after, 'ok');
    assert.equal(await routeCount(100), 3000);
  });

  await t.test('deletes: the missing routes are ESRCH each, the present ones go', async () => {
    // Table 100 holds 10.0.0.0/24 .. 10.11.183.0/24; every third delete names a route of table 101, which is empty.
    const changes = Array.from({ length: 3000 }, (_, i) => ({ op: 'del' as const, route: unreachable(i % 3 === 0 ? 101 : 100, i) }));
    const r = await child({ changes });
    r.outcomes.forEach((o, i) => assert.equal(o, i % 3 === 0 ? 'ESRCH' : 'ok', `delete ${i}`));
    assert.equal(await routeCount(100), 1000);
  });

  await t.test('an overflowing burst of refusals (ENOBUFS): no refused change reads as done; the client works on', async () => {
    await ipIn(NS, ['route', 'flush', 'table', '100']);
    // Adds that work alternate with deletes the kernel refuses, whose errors (each echoing its request)
    // overflow a receive buffer kept at the kernel's minimum with 4096 requests in flight.
    const changes = Array.from({ length: 3000 }, (_, i) => ({ op: i % 2 ? 'del' as const : 'add' as const, route: unreachable(i % 2 ? 101 : 100, i) }));
    const r = await child({ changes, starve: true });
    const counts = new Map<string, number>();
    r.outcomes.forEach((o, i) => {
      const key = `${changes[i]!.op}:${o}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (changes[i]!.op === 'del') assert.notEqual(o, 'ok', `refused delete ${i} reported done`);
      else assert.ok(o === 'ok' || o === 'ENOBUFS', `add ${i}: ${o}`);
    });
    assert.ok((counts.get('del:ENOBUFS') ?? 0) > 0, `the burst overflowed the buffer: ${JSON.stringify([...counts])}`);
    assert.equal(r.after, 'ok', 'a request after the overflow works');
    // Every add reported done is in the kernel (an ENOBUFS one may be too: only its answer was lost).
    const shown = (await ipIn(NS, ['route', 'show', 'table', '100'])).stdout;
    r.outcomes.forEach((o, i) => {
      if (changes[i]!.op === 'add' && o === 'ok') assert.ok(shown.includes(`unreachable ${unreachable(100, i).dst} `), `add ${i} reported done but missing`);
    });
  });
});
