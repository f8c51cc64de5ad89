import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { FakePort } from '../../test/support/fake-port';
import type { KernelEvent, KernelPort } from '../kernel/port';
import type { Change, KernelState, Nexthop, Route } from '../model/types';
import { formatChange, parseSnapshot } from '../model/text';
import { reconcile } from './reconcile';

const route = (table: number): Route => ({ table, dst: '10.0.0.0/24', type: 'unicast', protocol: 117, scope: 'link', dev: 'if1' });
const changesFor = (n: number): Change[] => Array.from({ length: n }, (_, i) => ({ op: 'add', kind: 'route', route: route(1000 + i) }));

/** A port whose applies finish when the test says, in any order; records call order and concurrency. */
class ManualPort implements KernelPort {
  calls: number[] = [];
  open = new Map<number, { resolve(): void; reject(e: Error): void }>();
  most = 0;
  async snapshot(): Promise<KernelState> { return { links: [], addresses: [], routes: [], rules: [], nexthops: [] }; }
  async nexthopUsers(): Promise<{ nexthops: Nexthop[]; routes: Route[] }> { return { nexthops: [], routes: [] }; }
  apply(change: Change): Promise<void> {
    const table = change.kind === 'route' ? change.route.table : -1;
    this.calls.push(table);
    return new Promise((resolve, reject) => {
      this.open.set(table, { resolve, reject });
      this.most = Math.max(this.most, this.open.size);
    });
  }
  finish(table: number, error?: Error): void {
    const w = this.open.get(table)!;
    this.open.delete(table);
    if (error) w.reject(error);
    else w.resolve();
  }
  subscribe(_e: (e: KernelEvent) => void, _o: () => void): () => void { return () => undefined; }
  close(): void {}
}

const tick = () => new Promise((r) => setImmediate(r));

test('pipelined: applies called in change order, at most `window` unfinished, results in change order', async () => {
  const port = new ManualPort();
  const changes = changesFor(10);
  const done = reconcile(port, changes, 3);
  await tick();
  assert.deepEqual(port.calls, [1000, 1001, 1002], 'three handed over before any finished');
  // Finish newest first, with failures in between: later changes still go.
  while (port.calls.length < 10 || port.open.size > 0) {
    const newest = Math.max(...port.open.keys());
    port.finish(newest, newest % 3 === 0 ? new UplinkdError('kernel', `no ${newest}`, { errno: 'EINVAL' }) : undefined);
    await tick();
  }
  const result = await done;
  assert.equal(port.most, 3);
  assert.deepEqual(port.calls, changes.map((c) => (c.kind === 'route' ? c.route.table : -1)));
  assert.deepEqual(result.failed.map((f) => [f.change, f.error.message]), [[changes[2], 'no 1002'], [changes[5], 'no 1005'], [changes[8], 'no 1008']]);
  assert.deepEqual(result.applied, changes.filter((_, i) => i % 3 !== 2));
  assert.ok(result.applied.every((c, i) => i === 0 || changes.indexOf(c) > changes.indexOf(result.applied[i - 1]!)));
});

test('a non-UplinkdError rejection becomes kernel UplinkdError; an empty list applies nothing', async () => {
  const port = new ManualPort();
  const changes = changesFor(2);
  const done = reconcile(port, changes);
  await tick();
  port.finish(1001, new Error('boom'));
  port.finish(1000);
  const result = await done;
  assert.deepEqual(result.applied, [changes[0]]);
  assert.equal(result.failed[0]!.error.code, 'kernel');
  assert.equal(result.failed[0]!.error.message, 'boom');
  assert.deepEqual(await reconcile(port, []), { applied: [], failed: [] });
});

test('against the fake kernel: a failed change fails what depends on it, as one by one, and the rest applies', async () => {
  const port = new FakePort(parseSnapshot(`
link lo up lower_up
link if1 up lower_up
addr if1 198.51.100.2/24
`));
  port.failWhen((c) => c.kind === 'nexthop' && c.nexthop.id === 1001, 'ENETUNREACH');
  const changes: Change[] = [
    { op: 'add', kind: 'nexthop', nexthop: { id: 1001, protocol: 117, gateway: '198.51.100.1', dev: 'if1' } },
    { op: 'add', kind: 'nexthop', nexthop: { id: 1002, protocol: 117, gateway: '198.51.100.3', dev: 'if1' } },
    { op: 'add', kind: 'nexthop', nexthop: { id: 1000, protocol: 117, group: [{ id: 1001, weight: 1 }] } },
    { op: 'add', kind: 'route', route: { table: 1000, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1000 } },
    ...changesFor(100),
  ];
  const result = await reconcile(port, changes, 8);
  assert.deepEqual(result.failed.map((f) => formatChange(f.change)), changes.slice(0, 4).filter((_, i) => i !== 1).map(formatChange));
  assert.deepEqual(result.applied, [changes[1], ...changes.slice(4)]);
  assert.deepEqual(port.applied, result.applied, 'the kernel saw them in change order');
});
