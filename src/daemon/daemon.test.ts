import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../config/load';
import { routeInterest, runOnce } from '../engine/cycle';
import { UplinkdError } from '../errors';
import { FakePort } from '../../test/support/fake-port';
import { createLogger, parseLine } from '../log';
import type { Address, KernelState, Link, Route, Rule } from '../model/types';
import { formatChange, formatRule } from '../model/text';
import { CONFLICT_DEFAULTS } from './conflict';
import { CAUSE_CHARS, CAUSES_SHOWN, CHANGES_SHOWN } from './log-volume';
import { ADDRESS_GRACE_MS, Daemon, RETRY_MIN_MS, type HealthChangeLike, type HealthSource } from './daemon';
import { CountingPort, FakeNft, VirtualTimers } from '../../test/support/daemon';
import type { HealthVerdict } from '../model/facts';
import { formatDaemonStatus } from './status-text';

const LINKS: Link[] = [
  { index: 1, name: 'lo', up: true, lowerUp: true },
  { index: 2, name: 'if0', up: true, lowerUp: true },
  { index: 3, name: 'if1', up: true, lowerUp: true },
  { index: 4, name: 'if2', up: true, lowerUp: true },
];
const addr = (dev: string, address: string, dynamic = false): Address => ({ dev, address, prefixlen: 24, dynamic, secondary: false, scope: 'universe' });
const BASE_ADDRESSES = [addr('if0', '192.168.10.1'), addr('if1', '198.51.100.2')];
const dhcpDefault = (gateway: string): Route => ({ table: 254, dst: '0.0.0.0/0', type: 'unicast', protocol: 16, scope: 'universe', gateway, dev: 'if2', metric: 100 });

function configText(opts: { weight1?: number; monitor1?: string } = {}): string {
  return [
    'uplinks:',
    '  - name: isp1',
    '    interface: if1',
    '    address: 198.51.100.2/24',
    '    gateway: 198.51.100.1',
    `    weight: ${opts.weight1 ?? 1}`,
    '    table: 1001',
    ...(opts.monitor1 ? ['    monitor:', `      targets: ${opts.monitor1}`] : []),
    '  - name: isp2',
    '    interface: if2',
    '    dhcp: true',
    '    table: 1002',
    'lan: [if0]',
    'paths:',
    '  leases: []',
    'daemon:',
    '  resync_interval: 30s',
    '  debounce: 5ms',
    '',
  ].join('\n');
}

function baseKernel(): KernelState {
  return { links: LINKS, addresses: BASE_ADDRESSES, routes: [], rules: [], nexthops: [] };
}

interface Harness {
  daemon: Daemon;
  kernel: FakePort;
  port: CountingPort;
  nft: FakeNft;
  timers: VirtualTimers;
  lines: string[];
  file: string;
  events: (name: string) => Record<string, string>[];
}

async function startHarness(options: { health?: HealthSource; monitor1?: string; kernel?: KernelState; nft?: FakeNft; watchNft?: boolean; wallNow?: () => number } = {}): Promise<Harness> {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'uplinkd-daemon-')), 'uplinkd.yaml');
  writeFileSync(file, configText({ monitor1: options.monitor1 }));
  const kernel = new FakePort(options.kernel ?? baseKernel());
  const port = new CountingPort(kernel);
  const timers = new VirtualTimers();
  const nft = options.nft ?? new FakeNft();
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => lines.push(l), now: () => timers.now });
  const daemon = new Daemon({
    configFile: file,
    port,
    readLeases: async () => [],
    loadConfig,
    log,
    system: { sync: async () => undefined, remove: async () => undefined },
    nft: nft.run,
    ...(options.watchNft ? { nftWatch: nft.watch } : {}),
    health: options.health,
    now: () => timers.now,
    ...(options.wallNow ? { wallNow: options.wallNow } : {}),
    timers,
    watchLeases: false,
  });
  await untilDone(daemon.start(), timers);
  const events = (name: string) => lines.map(parseLine).filter((f) => f.event === name);
  return { daemon, kernel, port, nft, timers, lines, file, events };
}

/** Advances virtual time until `p` settles (start and reload wait for their cycles). */
async function untilDone<T>(p: Promise<T>, timers: VirtualTimers): Promise<T> {
  let done = false;
  const watched = p.finally(() => (done = true));
  // Loading the config file is real I/O: give it real time between virtual steps.
  for (let i = 0; i < 500 && !done; i++) {
    await timers.advance(10);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return watched;
}

/** isp2's DHCP client (on if2) holding `address` (dynamic, /24) with its default route via `gateway` in main. */
async function dhcpLease(h: Harness, address: string, gateway: string): Promise<void> {
  h.kernel.setInterfaces(LINKS, [...BASE_ADDRESSES, addr('if2', address, true)]);
  await h.kernel.apply({ op: 'add', kind: 'route', route: dhcpDefault(gateway) });
}

const ruleText = (rules: Rule[]) => rules.map(formatRule).sort();
const hasRule = (rules: Rule[], pattern: RegExp) => rules.some((r) => pattern.test(formatRule(r)));

test('start adopts and converges: the balance default and the static uplink rule exist, logged with the cause', async () => {
  const h = await startHarness();
  const state = await h.kernel.snapshot();
  assert.ok(hasRule(state.rules, /from 198\.51\.100\.2\/32 lookup 1001 priority 10100/), ruleText(state.rules).join('\n'));
  assert.ok(state.routes.some((r) => r.table === 1000 && r.nhid === 1000), 'balanced default in table 1000');
  const applies = h.events('apply');
  assert.ok(applies.length > 0);
  assert.ok(applies.every((f) => /start/.test(f.cause)), 'every change names its cause');
  assert.equal(h.daemon.status().inSync, true);
  await h.daemon.stop({ cleanup: false });
});

test('our own changes echo back but the loop terminates: no writes once converged', async () => {
  const h = await startHarness();
  const writes = h.port.writes.length;
  await h.timers.advance(100);
  const snapshots = h.port.snapshots;
  await h.timers.advance(1000);
  assert.equal(h.port.writes.length, writes, 'no writes after convergence');
  assert.equal(h.port.snapshots, snapshots, 'no further cycles without new events');
  await h.daemon.stop({ cleanup: false });
});

test('a DHCP address and gateway appearing, then renumbering: the rule and table follow, the stale rule goes', async () => {
  const h = await startHarness();
  assert.equal(h.daemon.status().uplinks.find((u) => u.name === 'isp2')?.state, 'waiting');
  await dhcpLease(h, '203.0.113.120', '203.0.113.1');
  await h.timers.advance(50);
  let state = await h.kernel.snapshot();
  assert.ok(hasRule(state.rules, /from 203\.0\.113\.120\/32 lookup 1002/));
  assert.ok(state.routes.some((r) => r.table === 1002 && r.dst === '0.0.0.0/0' && r.gateway === '203.0.113.1'));
  const rule = h.events('apply').find((f) => /from 203\.0\.113\.120/.test(f.change));
  assert.ok(rule, 'the rule add was logged');
  assert.match(rule.cause, /203\.0\.113\.120/, 'the cause names the address event');

  // Renumber: new address and new gateway.
  await h.kernel.apply({ op: 'del', kind: 'route', route: dhcpDefault('203.0.113.1') });
  h.kernel.setInterfaces(LINKS, [...BASE_ADDRESSES, { ...addr('if2', '203.0.114.7', true), prefixlen: 24 }]);
  await h.kernel.apply({ op: 'add', kind: 'route', route: dhcpDefault('203.0.114.1') });
  await h.timers.advance(50);
  state = await h.kernel.snapshot();
  assert.ok(hasRule(state.rules, /from 203\.0\.114\.7\/32 lookup 1002/));
  assert.ok(!hasRule(state.rules, /203\.0\.113\.120/), 'stale rule removed');
  assert.ok(state.routes.some((r) => r.table === 1002 && r.dst === '0.0.0.0/0' && r.gateway === '203.0.114.1'));
  assert.equal(h.daemon.status().uplinks.find((u) => u.name === 'isp2')?.state, 'ready');
  // The metrics counters add up every cycle's changes (start, address, renumbering).
  assert.deepEqual(h.daemon.status().totals, { applied: h.events('apply').length, failed: 0 });
  assert.ok(h.daemon.status().totals!.applied > h.daemon.status().lastCycle!.applied, 'more than the last cycle');
  await h.daemon.stop({ cleanup: false });
});

test('a renumbering makes one cycle: the notifications of its own changes make none, another program\'s change after them does', async () => {
  const h = await startHarness();
  await dhcpLease(h, '203.0.113.120', '203.0.113.1');
  await h.timers.advance(100);
  const before = h.port.snapshots;
  const writes = h.port.writes.length;
  await h.kernel.apply({ op: 'del', kind: 'route', route: dhcpDefault('203.0.113.1') });
  await dhcpLease(h, '203.0.114.7', '203.0.114.1');
  await h.timers.advance(100);
  const renumbered = h.port.writes.slice(writes);
  assert.ok(renumbered.some((c) => c.kind === 'rule' && c.op === 'add' && c.rule.src === '203.0.114.7/32'), 'the new rule was added');
  assert.equal(h.port.snapshots - before, 1, 'one cycle: its own changes echoed back without another');
  // Another program deletes the new rule just after: not an echo, so a cycle restores it.
  const ours = (await h.kernel.snapshot()).rules.find((r) => r.src === '203.0.114.7/32')!;
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: ours });
  await h.timers.advance(100);
  assert.equal(h.port.snapshots - before, 2, 'the foreign delete made a cycle');
  assert.ok((await h.kernel.snapshot()).rules.some((r) => r.src === '203.0.114.7/32'), 'restored');
  await h.daemon.stop({ cleanup: false });
});

test('an uplink\'s address deleted then its next one added 30 ms later (a DHCP client renumbering beside a big table) is one cycle; an address really gone is acted on after the grace', async () => {
  const h = await startHarness();
  await dhcpLease(h, '203.0.113.120', '203.0.113.1');
  await h.timers.advance(200);
  let before = h.port.snapshots;
  await h.kernel.apply({ op: 'del', kind: 'route', route: dhcpDefault('203.0.113.1') });
  h.kernel.setInterfaces(LINKS, BASE_ADDRESSES); // the old address deleted; the kernel flushes for 30 ms
  await h.timers.advance(30);
  assert.equal(h.port.snapshots - before, 0, 'no cycle while the interface waits for its next address');
  await dhcpLease(h, '203.0.114.7', '203.0.114.1');
  await h.timers.advance(20);
  assert.equal(h.port.snapshots - before, 1, 'the new address ended the wait: one cycle');
  assert.ok((await h.kernel.snapshot()).rules.some((r) => r.src === '203.0.114.7/32'));
  await h.timers.advance(500);
  assert.equal(h.port.snapshots - before, 1);
  // Gone for good: the rule goes ADDRESS_GRACE_MS later.
  before = h.port.snapshots;
  h.kernel.setInterfaces(LINKS, BASE_ADDRESSES);
  await h.timers.advance(ADDRESS_GRACE_MS - 10);
  assert.equal(h.port.snapshots - before, 0);
  await h.timers.advance(20);
  assert.equal(h.port.snapshots - before, 1);
  assert.ok(!(await h.kernel.snapshot()).rules.some((r) => r.src === '203.0.114.7/32'), 'its rule removed');
  await h.daemon.stop({ cleanup: false });
});

test('a burst of events is coalesced into one cycle', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const before = h.port.snapshots;
  // 20 foreign default routes in main (a DHCP client's candidates): 20 events, one cycle.
  for (let i = 0; i < 20; i++) {
    await h.kernel.apply({ op: 'add', kind: 'route', route: { table: 254, dst: '0.0.0.0/0', metric: 500 + i, type: 'unicast', protocol: 4, scope: 'link', dev: 'if0' } });
  }
  await h.timers.advance(100);
  assert.equal(h.port.snapshots - before, 1);
  await h.daemon.stop({ cleanup: false });
});

test('an owned rule deleted and an owned table flushed behind its back are restored; a foreign rule is untouched', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const state = await h.kernel.snapshot();
  const owned = state.rules.find((r) => r.src === '198.51.100.2/32')!;
  const foreign: Rule = { priority: 10150, action: 'lookup', table: 77, protocol: 4, src: '192.0.2.9/32' };
  await h.kernel.apply({ op: 'add', kind: 'rule', rule: foreign });
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: owned });
  for (const r of state.routes.filter((r) => r.table === 1001)) await h.kernel.apply({ op: 'del', kind: 'route', route: r });
  await h.timers.advance(50);
  const after = await h.kernel.snapshot();
  assert.deepEqual(ruleText(after.rules), ruleText([...state.rules, foreign]));
  assert.deepEqual(
    after.routes.filter((r) => r.table === 1001).length,
    state.routes.filter((r) => r.table === 1001).length,
  );
  const drift = h.events('apply').filter((f) => /drift/.test(f.reason ?? ''));
  assert.ok(drift.some((f) => /from 198\.51\.100\.2/.test(f.change)), 'restoration logged as drift');
  await h.daemon.stop({ cleanup: false });
});

test('ping-pong with another manager is rate limited with a conflict warning, then backs off exponentially', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const target = (await h.kernel.snapshot()).rules.find((r) => r.src === '198.51.100.2/32')!;
  // The other manager removes the rule every time it appears (foreign-rule cleanup).
  let removals = 0;
  h.kernel.subscribe((e) => {
    if (e.kind === 'rule' && e.action === 'new' && e.summary.includes('198.51.100.2/32')) {
      queueMicrotask(() => {
        removals++;
        void h.kernel.apply({ op: 'del', kind: 'rule', rule: target });
      });
    }
  }, () => undefined);
  const adds = () => h.port.writes.filter((c) => c.kind === 'rule' && c.op === 'add' && c.rule.src === '198.51.100.2/32').length;
  const initial = adds();
  const restoresOf = () => adds() - initial;
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: target });
  removals++;
  await h.timers.advance(1000);
  assert.equal(restoresOf(), CONFLICT_DEFAULTS.limit, 'restored up to the limit, then held back');
  const warnings = h.events('conflict');
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.level, 'warn');
  assert.match(warnings[0]!.object, /from 198\.51\.100\.2\/32 lookup 1001/);
  assert.match(warnings[0]!.msg, /ManageForeignRoutingPolicyRules/);
  assert.equal(h.daemon.status().conflicts.length, 1);
  assert.equal(h.daemon.status().inSync, false);

  // After the first backoff, one probe restoration; the fight goes on, so the next backoff is longer.
  await h.timers.advance(CONFLICT_DEFAULTS.baseBackoffMs);
  assert.equal(restoresOf(), CONFLICT_DEFAULTS.limit + 1);
  const second = h.events('conflict');
  assert.equal(second.length, 2);
  assert.equal(Number(second[1]!.retry_in_ms), 2 * CONFLICT_DEFAULTS.baseBackoffMs);
  assert.ok(removals >= restoresOf());
  await h.daemon.stop({ cleanup: false });
});

test('an invalid reload is rejected with the check error and the running state is kept; a valid one applies', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const before = await h.kernel.snapshot();
  writeFileSync(h.file, configText().replace('    dhcp: true', '    dhcp: maybe'));
  const result = await untilDone(h.daemon.reload(), h.timers);
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.error.includes(`${h.file}:`), 'error names file:line:col');
  const rejected = h.events('reload-rejected');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]!.level, 'error');
  assert.deepEqual(await h.kernel.snapshot(), before);

  writeFileSync(h.file, configText({ weight1: 5 }));
  // The answer tells the first cycle with the new file: the group's new weight, applied.
  const reloaded = await untilDone(h.daemon.reload(), h.timers);
  assert.ok(reloaded.ok && reloaded.cycle.ran && reloaded.cycle.failed === 0 && reloaded.cycle.error === undefined, JSON.stringify(reloaded));
  assert.ok(reloaded.ok && reloaded.cycle.applied >= 1, JSON.stringify(reloaded));
  const group = (await h.kernel.snapshot()).nexthops.find((n) => n.id === 1000);
  assert.deepEqual(group?.group, [{ id: 1001, weight: 5 }]);
  await h.daemon.stop({ cleanup: false });
});

test('a netlink overrun forces a full resync that finds changes whose events were lost', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const owned = (await h.kernel.snapshot()).rules.find((r) => r.src === '198.51.100.2/32')!;
  h.port.muted = true;
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: owned });
  h.port.muted = false;
  await h.timers.advance(100);
  assert.ok(!hasRule((await h.kernel.snapshot()).rules, /from 198\.51\.100\.2/), 'no event, no cycle yet');
  h.kernel.overrun();
  await h.timers.advance(100);
  assert.ok(hasRule((await h.kernel.snapshot()).rules, /from 198\.51\.100\.2/));
  assert.equal(h.events('overrun').length, 1);
  // A flood of overruns (a big foreign table flushed): one line, then one with the count per 5 s window.
  for (let i = 0; i < 50; i++) h.kernel.overrun();
  await h.timers.advance(100);
  assert.equal(h.events('overrun').length, 1);
  await h.timers.advance(5_000);
  assert.deepEqual(h.events('overrun').map((e) => e.suppressed), [undefined, '50']);
  await h.daemon.stop({ cleanup: false });
});

test('the periodic resync also catches silent changes', async () => {
  const h = await startHarness();
  const owned = (await h.kernel.snapshot()).rules.find((r) => r.src === '198.51.100.2/32')!;
  h.port.muted = true;
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: owned });
  h.port.muted = false;
  await h.timers.advance(31_000);
  assert.ok(hasRule((await h.kernel.snapshot()).rules, /from 198\.51\.100\.2/));
  await h.daemon.stop({ cleanup: false });
});

test('link down leaves the default; link up returns it', async () => {
  const h = await startHarness();
  await dhcpLease(h, '203.0.113.120', '203.0.113.1');
  await h.timers.advance(50);
  const members = async () => (await h.kernel.snapshot()).nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id);
  assert.deepEqual(await members(), [1001, 1002]);
  h.kernel.setInterfaces(LINKS.map((l) => (l.name === 'if1' ? { ...l, lowerUp: false } : l)), [...BASE_ADDRESSES, addr('if2', '203.0.113.120', true)]);
  await h.timers.advance(50);
  assert.deepEqual(await members(), [1002]);
  h.kernel.setInterfaces(LINKS, [...BASE_ADDRESSES, addr('if2', '203.0.113.120', true)]);
  await h.timers.advance(50);
  assert.deepEqual(await members(), [1001, 1002]);
  const uplinkLogs = h.events('uplink').filter((f) => f.uplink === 'isp1');
  assert.ok(uplinkLogs.some((f) => f.state === 'link-down'));
  await h.daemon.stop({ cleanup: false });
});

test('health changes trigger a replan and feed facts.health', async () => {
  const verdicts: Record<string, HealthVerdict> = { isp1: 'up' };
  const listeners = new Set<(c: HealthChangeLike) => void>();
  const health: HealthSource = {
    verdicts: () => ({ ...verdicts }),
    on: (_e, l) => listeners.add(l),
    off: (_e, l) => listeners.delete(l),
  };
  const h = await startHarness({ health });
  assert.ok((await h.kernel.snapshot()).routes.some((r) => r.table === 1000), 'default present');
  verdicts.isp1 = 'down';
  const before = h.port.snapshots;
  for (const l of listeners) l({ uplink: 'isp1', from: 'up', to: 'down', reason: '6 rounds lost' });
  await h.timers.advance(0);
  assert.equal(h.port.snapshots, before + 1, 'a health verdict is replanned at once, without the 5 ms debounce');
  await h.timers.advance(50);
  // The only uplink judged down while its link is up: kept in the default as the last resort, loudly.
  assert.ok((await h.kernel.snapshot()).routes.some((r) => r.table === 1000), 'last resort keeps the balanced default');
  assert.equal(h.daemon.status().uplinks.find((u) => u.name === 'isp1')?.lastResort, true);
  assert.ok(h.daemon.status().warnings.some((w) => w.startsWith('LAST RESORT')));
  assert.equal(h.daemon.status().facts.health.isp1, 'down');
  const logged = h.events('health')[0];
  assert.equal(logged?.uplink, 'isp1');
  assert.equal(logged?.to, 'down');
  assert.ok(h.daemon.status().lastCycle?.causes.some((c) => /health of isp1: up -> down/.test(c)), 'the cycle names the health cause');
  await h.daemon.stop({ cleanup: false });
  assert.equal(listeners.size, 0, 'listener removed on stop');
});

test('stop leaves routing in place; stop with cleanup removes only what uplinkd owns', async () => {
  const h = await startHarness();
  const foreign: Rule = { priority: 10150, action: 'lookup', table: 77, protocol: 4, src: '192.0.2.9/32' };
  await h.kernel.apply({ op: 'add', kind: 'rule', rule: foreign });
  await h.timers.advance(50);
  await h.daemon.stop({ cleanup: false });
  assert.ok((await h.kernel.snapshot()).rules.some((r) => r.protocol === 117));

  const again = await startHarness();
  await again.daemon.stop({ cleanup: true });
  const state = await again.kernel.snapshot();
  assert.ok(!state.rules.some((r) => r.protocol === 117));
  assert.ok(!state.routes.some((r) => r.protocol === 117));
  assert.equal(state.nexthops.length, 0);
});

test('status times are the wall clock\'s, spans the daemon\'s own clock: the wall clock stepped back an hour shows in status and delays no cycle', async () => {
  const BASE = 1_800_000_000_000;
  let step = 0;
  // The wall clock runs BASE - START ahead of the daemon's (the harness's virtual clock, START until it exists), then `step` more.
  const START = new VirtualTimers().now;
  let started: Harness | undefined;
  const h = (started = await startHarness({ wallNow: () => (started?.timers.now ?? START) - START + BASE + step }));
  const startedAt = Date.parse(h.daemon.status().startedAt);
  assert.ok(startedAt >= BASE && startedAt <= h.timers.now - START + BASE, `started at ${h.daemon.status().startedAt}: on the wall clock`);
  await dhcpLease(h, '203.0.113.120', '203.0.113.1');
  await h.timers.advance(100);
  step = -3_600_000;
  // Another program deletes a rule of ours: its cycle runs after the debounce, on the daemon's clock.
  const before = h.port.snapshots;
  const ours = (await h.kernel.snapshot()).rules.find((r) => r.src === '203.0.113.120/32')!;
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: ours });
  await h.timers.advance(100);
  assert.equal(h.port.snapshots - before, 1, 'the foreign delete made a cycle');
  assert.ok((await h.kernel.snapshot()).rules.some((r) => r.src === '203.0.113.120/32'), 'restored');
  const at = Date.parse(h.daemon.status().lastCycle!.at);
  const wall = h.timers.now - START + BASE - 3_600_000;
  assert.ok(at <= wall && at > wall - 200, `the last cycle at ${new Date(at).toISOString()}: on the stepped wall clock`);
  await h.daemon.stop({ cleanup: false });
});

test('a restart adopts what is there: no writes when the kernel already matches', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  await h.daemon.stop({ cleanup: false });
  const port = new CountingPort(h.kernel);
  const timers = new VirtualTimers();
  const second = new Daemon({
    configFile: h.file,
    port,
    readLeases: async () => [],
    loadConfig,
    log: createLogger({ sink: () => undefined }),
    system: { sync: async () => undefined, remove: async () => undefined },
    nft: h.nft.run,
    now: () => timers.now,
    timers,
    watchLeases: false,
  });
  const nftWrites = h.nft.writes().length;
  await untilDone(second.start(), timers);
  assert.equal(port.writes.length, 0);
  assert.equal(h.nft.writes().length, nftWrites, 'table ip uplinkd adopted as it is');
  await second.stop({ cleanup: false });
});

test('weak monitoring is logged as a warning once: a target that is the uplink\'s gateway, a single target', async () => {
  const h = await startHarness({ monitor1: '[198.51.100.1]' });
  await h.timers.advance(50);
  const msgs = h.events('plan').filter((f) => f.level === 'warn').map((f) => f.msg);
  assert.ok(msgs.some((m) => /^uplink isp1: monitor target 198\.51\.100\.1 is the uplink's own gateway: it cannot see past the first hop/.test(m ?? '')), msgs.join('\n'));
  assert.ok(msgs.some((m) => /^uplink isp1: monitor has only one target/.test(m ?? '')));
  assert.equal(msgs.length, new Set(msgs).size, 'each warning once');
  await h.daemon.stop({ cleanup: false });
});

test('churn in a foreign table (a BGP feed) starts no cycle and is never read; a default route there on an uplink\'s interface is', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const before = h.port.snapshots;
  const bgp = (i: number): Route => ({ table: 3000, dst: `100.${i >> 8}.${i & 255}.0/24`, type: 'unicast', protocol: 186, scope: 'link', dev: 'if0' });
  for (let i = 0; i < 200; i++) await h.kernel.apply({ op: 'add', kind: 'route', route: bgp(i) });
  for (let i = 0; i < 100; i++) await h.kernel.apply({ op: 'del', kind: 'route', route: bgp(i) });
  await h.timers.advance(1000);
  assert.equal(h.port.snapshots, before, 'no cycle for routes uplinkd does not read');
  const seen = await h.port.snapshot(routeInterestFor(h));
  assert.ok(!seen.routes.some((r) => r.table === 3000), 'the foreign table is not part of the snapshot');
  await h.kernel.apply({ op: 'add', kind: 'route', route: { ...bgp(0), dst: '0.0.0.0/0', metric: 7 } });
  await h.timers.advance(100);
  assert.equal(h.port.snapshots - before, 1, 'a default route on if0 (no uplink\'s) is not a fact either');
  await h.kernel.apply({ op: 'add', kind: 'route', route: { ...bgp(0), dst: '0.0.0.0/0', metric: 8, dev: 'if2' } });
  await h.timers.advance(100);
  assert.equal(h.port.snapshots - before, 2, 'a default route on isp2\'s if2 there is a fact (a DHCP gateway): one cycle');
  await h.daemon.stop({ cleanup: false });
});

test('a change the kernel refuses is retried with a growing delay, long before the 30 s resync, and lands once accepted', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const target = (await h.kernel.snapshot()).rules.find((r) => r.src === '198.51.100.2/32')!;
  const heal = h.kernel.failWhen((c) => c.kind === 'rule' && c.op === 'add' && c.rule.src === '198.51.100.2/32', 'ENOMEM');
  await h.kernel.apply({ op: 'del', kind: 'rule', rule: target });
  const attempts = () => h.port.writes.filter((c) => c.kind === 'rule' && c.op === 'add' && c.rule.src === '198.51.100.2/32').length;
  const start = attempts();
  await h.timers.advance(5_000);
  const tries = attempts() - start;
  assert.ok(tries >= 4 && tries <= 6, `retried with backoff (250, 500, 1000, 2000 ms...): ${tries} tries in 5 s`);
  assert.equal(h.daemon.status().inSync, false);
  assert.ok(h.events('apply-failed').some((f) => /ENOMEM/.test(f.error)), 'the refusal is logged with its reason');
  assert.ok(h.lines.map(parseLine).some((f) => /retry: 1 change\(s\) failed/.test(f.cause ?? '')), 'the retry names its cause');
  heal();
  await h.timers.advance(10_000);
  assert.ok(hasRule((await h.kernel.snapshot()).rules, /from 198\.51\.100\.2\/32/), 'in place once the kernel accepts it');
  assert.equal(h.daemon.status().inSync, true);
  const settled = attempts();
  await h.timers.advance(20_000);
  assert.equal(attempts(), settled, 'no more retries once in sync');
  await h.daemon.stop({ cleanup: false });
});

test('a reload answers with the first cycle under the new file: the changes the kernel refused are counted as failed', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const heal = h.kernel.failWhen((c) => c.kind === 'nexthop' && c.op !== 'del' && (c.nexthop.group ?? []).some((m) => m.weight === 6), 'ENOMEM');
  writeFileSync(h.file, configText({ weight1: 6 }));
  const refused = await untilDone(h.daemon.reload(), h.timers);
  assert.ok(refused.ok, 'the file itself is accepted');
  assert.ok(refused.ok && refused.cycle.ran && refused.cycle.failed >= 1, JSON.stringify(refused));
  heal();
  await h.timers.advance(5_000);
  writeFileSync(h.file, configText({ weight1: 7 }));
  const fine = await untilDone(h.daemon.reload(), h.timers);
  assert.ok(fine.ok && fine.cycle.ran && fine.cycle.failed === 0 && fine.cycle.applied >= 1, JSON.stringify(fine));
  await h.daemon.stop({ cleanup: false });
});

test('a burst of ENOBUFS (acks lost) leaves the daemon running with its state; the changes are retried and land', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const before = await h.kernel.snapshot();
  let lost = 0;
  // Every change of the next cycle comes back ENOBUFS (the transport's answer when its ack was dropped), then they work.
  h.port.applyHook = () => {
    if (lost < 12) {
      lost++;
      return Promise.reject(new UplinkdError('netlink', 'netlink request (type 32) failed: ENOBUFS', { errno: 'ENOBUFS' }));
    }
    return undefined;
  };
  for (const r of before.rules.filter((r) => r.protocol === 117)) await h.kernel.apply({ op: 'del', kind: 'rule', rule: r });
  await h.timers.advance(20);
  assert.ok(lost > 0, 'the cycle met ENOBUFS');
  assert.equal(h.daemon.status().inSync, false);
  await h.timers.advance(5_000);
  assert.deepEqual(ruleText((await h.kernel.snapshot()).rules), ruleText(before.rules), 'every rule restored by the retries');
  assert.equal(h.daemon.status().inSync, true);
  await h.daemon.stop({ cleanup: false });
});

test('a reload whose file vanished or is unreadable keeps the running state; fixing the file reloads', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const before = await h.kernel.snapshot();
  unlinkSync(h.file);
  const gone = await untilDone(h.daemon.reload(), h.timers);
  assert.equal(gone.ok, false);
  assert.ok(!gone.ok && gone.error.includes(h.file), gone.ok ? '' : gone.error);
  mkdirSync(h.file); // a directory where the file was: EISDIR, unreadable as a file for root too
  const unreadable = await untilDone(h.daemon.reload(), h.timers);
  assert.equal(unreadable.ok, false);
  assert.equal(h.events('reload-rejected').length, 2);
  assert.deepEqual(await h.kernel.snapshot(), before, 'nothing changed');
  await h.timers.advance(35_000); // a periodic resync with the kept config still converges
  assert.deepEqual(await h.kernel.snapshot(), before);
  rmdirSync(h.file);
  writeFileSync(h.file, configText({ weight1: 4 }));
  assert.equal((await untilDone(h.daemon.reload(), h.timers)).ok, true);
  assert.deepEqual((await h.kernel.snapshot()).nexthops.find((n) => n.id === 1000)?.group, [{ id: 1001, weight: 4 }]);
  await h.daemon.stop({ cleanup: false });
});

function routeInterestFor(h: Harness) {
  return routeInterest(h.daemon.currentConfig()!);
}

test('under an event storm cycles are spaced so they take at most about a quarter of the time; a lone event is handled at once', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const snapshot = h.port.snapshot.bind(h.port);
  h.port.snapshot = async (interest) => {
    h.timers.now += 40; // each cycle's snapshot takes 40 ms of (virtual) time
    return snapshot(interest);
  };
  const before = h.port.snapshots;
  const started = h.timers.now;
  // A relevant event every 10 ms for 3 s (plus the cycles' own time): a default route in main changing metric.
  for (let i = 0; i < 300; i++) {
    await h.kernel.apply({ op: i % 2 ? 'del' : 'add', kind: 'route', route: { table: 254, dst: '0.0.0.0/0', metric: 900, type: 'unicast', protocol: 4, scope: 'link', dev: 'if0' } });
    await h.timers.advance(10);
  }
  const stormCycles = h.port.snapshots - before;
  // Back to back that would be a cycle after every event (80 % busy); limited, cycles take about a quarter of the
  // time, plus the 200 ms burst the budget starts with.
  const duty = (stormCycles * 40) / (h.timers.now - started);
  assert.ok(stormCycles >= 10 && duty <= 0.32, `${stormCycles} cycles in a 3 s storm: ${Math.round(duty * 100)} % busy`);
  await h.timers.advance(2_000);
  const quiet = h.port.snapshots;
  await h.kernel.apply({ op: 'add', kind: 'route', route: { table: 254, dst: '0.0.0.0/0', metric: 901, type: 'unicast', protocol: 4, scope: 'link', dev: 'if0' } });
  await h.timers.advance(6); // the 5 ms debounce
  assert.equal(h.port.snapshots, quiet + 1, 'after the storm a lone event gets its cycle right after the debounce');
  await h.daemon.stop({ cleanup: false });
});

test('a run of renumberings after a quiet moment, their cycles taking 30 % of the time, is not delayed by the storm limit', async () => {
  const h = await startHarness();
  await h.timers.advance(2_000);
  const snapshot = h.port.snapshot.bind(h.port);
  h.port.snapshot = async (interest) => {
    h.timers.now += 45; // each cycle takes 45 ms (virtual), as beside a full BGP table on a busy machine
    return snapshot(interest);
  };
  // Every 300 ms two events, each a cycle of 45 ms: 90 ms of cycles per 300 ms, more than a quarter, but for 2.4 s
  // only: the budget's burst covers it, and each event gets its cycle right after the debounce.
  for (let i = 0; i < 8; i++) {
    for (const metric of [900, 901]) {
      const before = h.port.snapshots;
      await h.kernel.apply({ op: i % 2 ? 'del' : 'add', kind: 'route', route: { table: 254, dst: '0.0.0.0/0', metric, type: 'unicast', protocol: 4, scope: 'link', dev: 'if0' } });
      await h.timers.advance(6); // the 5 ms debounce
      assert.ok(h.port.snapshots > before, `renumbering ${i}: the cycle for metric ${metric} waited`);
      await h.timers.advance(4);
    }
    await h.timers.advance(300 - 2 * (10 + 45));
  }
  await h.daemon.stop({ cleanup: false });
});

const installed = (nft: FakeNft): boolean => (nft.table?.length ?? 0) > 0;

test('table ip uplinkd flushed by a firewall reload is restored by the next periodic resync cycle, as drift', async () => {
  const h = await startHarness();
  assert.ok(h.nft.table && h.nft.table.length > 0, 'installed by the first cycle');
  assert.match(h.daemon.status().pinning, /^flow pinning: in place/);
  const lists = () => h.nft.calls.filter((c) => c.args[1] === 'list').length;
  const listed = lists();
  const checked = h.daemon.status().pinning;
  assert.match(checked, /^flow pinning: in place at the last check \d\d:\d\d:\d\d UTC \(checked every 30 s\)/);
  h.nft.flushRuleset(); // `nft flush ruleset`: no rtnetlink event
  // Kernel events between resyncs replan without an nft process: the table depends on the config alone.
  await h.kernel.apply({ op: 'add', kind: 'route', route: { table: 254, dst: '10.9.0.0/16', type: 'unicast', protocol: 4, scope: 'link', dev: 'if0' } });
  await h.timers.advance(100);
  assert.ok(h.daemon.status().cycles >= 2, 'the event made a cycle');
  assert.equal(lists(), listed, 'no nft list between resyncs');
  assert.equal(h.daemon.status().pinning, checked, 'status names the time of the check it reports, not now');
  await h.timers.advance(30_000);
  assert.ok(h.nft.table && h.nft.table.length > 0, 'restored at the resync');
  const restore = h.events('apply').filter((f) => /^nft -f - <<< 'table ip uplinkd/.test(f.change));
  assert.equal(restore.length, 2, 'installed at start, restored once');
  assert.match(restore[1]!.cause, /periodic resync/);
  assert.match(restore[1]!.reason ?? '', /drift/);
  assert.match(h.daemon.status().pinning, /^flow pinning: in place/);
  await h.timers.advance(30_000);
  assert.equal(h.events('apply').filter((f) => /^nft/.test(f.change)).length, 2, 'the next resync finds it in place');
  await h.daemon.stop({ cleanup: false });
});

test('followed by nftables notifications, table ip uplinkd deleted by someone is restored at once as drift; our own change makes one quiet cycle', async () => {
  const h = await startHarness({ watchNft: true });
  await h.timers.advance(100);
  assert.ok(installed(h.nft), 'installed by the first cycle');
  assert.match(h.daemon.status().pinning, /^flow pinning: in place at the last check .* \(changes followed by nftables notifications\)/);
  const writes = h.nft.writes().length;
  const lists = () => h.nft.calls.filter((c) => c.args[1] === 'list').length;
  const listed = lists();
  const cycles = h.daemon.status().cycles;
  const flushedAt = h.timers.now;
  h.nft.flushRuleset();
  await untilDone(h.daemon.whenIdle(), h.timers);
  await h.timers.advance(100);
  assert.ok(installed(h.nft), 'restored without waiting for the 30 s resync');
  assert.ok(h.timers.now - flushedAt < 1_000, `${h.timers.now - flushedAt} ms after the flush`);
  const restore = h.events('apply').filter((f) => /^nft -f - <<< 'table ip uplinkd/.test(f.change));
  assert.equal(restore.length, 2, 'installed at start, restored once');
  assert.match(restore[1]!.cause, /nftables: table ip uplinkd changed \(delchain, delrule, deltable\)/);
  assert.match(restore[1]!.reason ?? '', /drift/);
  // The restore's own notification: one more cycle reads the table, finds it in place and writes nothing.
  assert.equal(h.nft.writes().length, writes + 1);
  assert.equal(lists(), listed + 2, 'read by the restoring cycle and by the one its own notification made');
  assert.equal(h.daemon.status().cycles, cycles + 2);
  await h.timers.advance(10_000);
  assert.equal(h.daemon.status().cycles, cycles + 2, 'then quiet: no loop');
  assert.equal(h.nft.writes().length, writes + 1);
  await h.daemon.stop({ cleanup: false });
});

test('when nftables notifications cannot be had the daemon says so once and the periodic resync still checks the table', async () => {
  const nft = new FakeNft();
  nft.watchRefused = 'cannot open a NETLINK_NETFILTER socket: EPROTONOSUPPORT';
  const h = await startHarness({ nft, watchNft: true });
  const warned = h.events('nft-events');
  assert.equal(warned.length, 1);
  assert.match(warned[0]!.msg, /EPROTONOSUPPORT\): table ip uplinkd is checked every 30 s only/);
  assert.match(h.daemon.status().pinning, /\(checked every 30 s\)/);
  h.nft.flushRuleset();
  await h.timers.advance(1_000);
  assert.ok(!installed(h.nft), 'no notification, no restore yet');
  await h.timers.advance(30_000);
  assert.ok(installed(h.nft), 'restored by the resync');
  await h.daemon.stop({ cleanup: false });
});

test('nft refusing the table: routing goes on, status says pinning is off, and a retry installs it once nft accepts', async () => {
  const nft = new FakeNft();
  nft.refuse = 'Error: Could not process rule: No such file or directory';
  const h = await startHarness({ nft });
  const state = await h.kernel.snapshot();
  assert.ok(hasRule(state.rules, /from 198\.51\.100\.2\/32 lookup 1001/), 'routing applied');
  assert.ok(!installed(nft), 'no table');
  const status = h.daemon.status();
  assert.match(status.pinning, /^flow pinning: off: cannot install table ip uplinkd: .*Could not process rule/);
  assert.equal(status.pinningInPlace, false);
  assert.equal(status.inSync, false);
  assert.ok(h.events('pinning').some((f) => f.level === 'error' && /routing goes on/.test(f.msg ?? '')));
  nft.refuse = undefined;
  await h.timers.advance(RETRY_MIN_MS + 50);
  assert.ok(installed(nft), 'installed by the retry');
  assert.match(h.daemon.status().pinning, /^flow pinning: in place/);
  assert.equal(h.daemon.status().inSync, true);
  await h.daemon.stop({ cleanup: false });
});

test('the daemon\'s cycle and uplinkd apply (the engine\'s runOnce) make the same changes for the same facts', async () => {
  // Facts with something of every kind to do: a stale rule and route of ours, a foreign rule, a stale nftables table.
  const initial = (): KernelState => ({
    ...baseKernel(),
    rules: [
      { priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.9/32' },
      { priority: 10150, action: 'lookup', table: 77, protocol: 4, src: '192.0.2.9/32' },
    ],
    routes: [{ table: 1001, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', gateway: '198.51.100.254', dev: 'if1' }],
  });
  const staleTable = [{ chain: 'prerouting', comment: 'isp1: pin arriving #0000000000000000', expr: [] }];
  const daemonNft = new FakeNft();
  daemonNft.table = [...staleTable];
  const h = await startHarness({ kernel: initial(), nft: daemonNft });
  const onceNft = new FakeNft();
  onceNft.table = [...staleTable];
  const once = new FakePort(initial());
  const { result } = await runOnce(once, await loadConfig(h.file), { nft: onceNft.run, readLeases: async () => [] });

  assert.equal(result.failed.length, 0);
  assert.ok(result.applied.length > 5);
  assert.deepEqual(h.port.writes.map(formatChange), result.applied.map(formatChange), 'the same netlink changes in the same order');
  assert.ok(result.applied.some((c) => c.op === 'del' && c.kind === 'rule'), 'the stale rule goes');
  assert.ok(result.applied.some((c) => c.op === 'replace' && c.kind === 'route'), 'the stale default is replaced');
  assert.equal(result.nftApplied?.op, 'install');
  assert.deepEqual(daemonNft.writes(), onceNft.writes(), 'the same nft -f script');
  assert.deepEqual(ruleText(once.current().rules), ruleText(h.kernel.current().rules));
  assert.deepEqual(once.current().routes.map((r) => formatChange({ op: 'add', kind: 'route', route: r })).sort(),
    h.kernel.current().routes.map((r) => formatChange({ op: 'add', kind: 'route', route: r })).sort());
  await h.daemon.stop({ cleanup: false });
});

test('drift is counted by identity: restoring a deleted object is drift, a change the plan made (a new weight) is not', async () => {
  const h = await startHarness();
  await dhcpLease(h, '203.0.113.120', '203.0.113.1');
  await h.timers.advance(100);
  const group = (await h.kernel.snapshot()).nexthops.find((n) => n.group)!;
  assert.equal(group.group?.length, 2);
  await h.kernel.apply({ op: 'del', kind: 'nexthop', nexthop: group });
  await h.timers.advance(100);
  const restored = h.events('apply').filter((f) => /nexthop/.test(f.change) && /drift/.test(f.reason ?? ''));
  assert.ok(restored.length > 0, h.lines.join('\n'));
  // Deleting the group took the route using it too: both are restorations, each described as the command that adds it.
  const objects = h.daemon.status().conflicts.map((c) => c.object);
  assert.ok(objects.some((o) => /^ip nexthop add id 1000 group/.test(o)), objects.join('\n'));
  assert.ok(objects.some((o) => /^ip route add default nhid 1000 table 1000/.test(o)), objects.join('\n'));
  const before = h.events('apply').length;
  writeFileSync(h.file, configText({ weight1: 3 }));
  await untilDone(h.daemon.reload(), h.timers);
  const after = h.events('apply').slice(before);
  assert.ok(after.some((f) => /^ip nexthop replace id 1000 group 1001,3\/1002/.test(f.change)), `the new weight is applied: ${after.map((f) => f.change).join('; ')}`);
  assert.ok(after.every((f) => f.reason === undefined), `not drift: ${after.map((f) => f.change).join('; ')}`);
  await h.daemon.stop({ cleanup: false });
});

test('stop --cleanup removes table ip uplinkd with the routing, through the same apply', async () => {
  const h = await startHarness();
  assert.ok(h.nft.table);
  await h.daemon.stop({ cleanup: true });
  assert.equal(h.nft.table, undefined);
  assert.ok(h.events('apply').some((f) => f.change === 'nft delete table ip uplinkd' && f.cause === 'stop --cleanup'));
});

test('nft runs only inside cycles, one process at a time, whatever reloads, resyncs and nudges come together', async () => {
  const h = await startHarness();
  for (let round = 0; round < 3; round++) {
    h.nft.flushRuleset();
    const reload = h.daemon.reload();
    h.daemon.nudge('hook');
    await h.timers.advance(30_000);
    await untilDone(reload, h.timers);
    assert.ok(installed(h.nft), `round ${round}: restored`);
  }
  assert.equal(h.nft.maxActive, 1);
  await h.daemon.stop({ cleanup: true });
  assert.equal(h.nft.maxActive, 1);
});

test('link flaps, carrier flaps and address removals: what the kernel flushed is restored without conflict or apply-failed, and converges', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const converged = await h.kernel.snapshot();
  const canon = (s: KernelState) => JSON.stringify([s.routes.map((r) => JSON.stringify(r)).sort(), s.rules.map(formatRule).sort(), s.nexthops.map((n) => JSON.stringify(n)).sort()]);
  const withLink = (patch: Partial<Link>): Link[] => LINKS.map((l) => (l.name === 'if1' ? { ...l, ...patch } : l));
  const flaps: [Link[], Address[]][] = [
    [withLink({ up: false, lowerUp: false }), BASE_ADDRESSES], // ip link set if1 down
    [withLink({ lowerUp: false }), BASE_ADDRESSES], // carrier loss
    [LINKS, BASE_ADDRESSES.filter((a) => a.dev !== 'if1')], // ip addr del on if1
  ];
  for (let i = 0; i < 30; i++) {
    const [links, addresses] = flaps[i % flaps.length]!;
    h.kernel.setInterfaces(links, addresses);
    // Fast flaps: sometimes back before any cycle ran, sometimes after one.
    if (i % 2 === 0) await h.timers.advance(50);
    h.kernel.setInterfaces(LINKS, BASE_ADDRESSES);
    await h.timers.advance(50);
  }
  await h.timers.advance(1000);
  assert.deepEqual(h.events('conflict'), []);
  assert.deepEqual(h.events('apply-failed'), []);
  assert.equal(h.daemon.status().conflicts.length, 0);
  assert.ok(h.events('apply').length > 30, 'the flushed objects were restored');
  assert.ok(h.events('apply').every((f) => f.reason === undefined), 'none of it is called drift');
  assert.equal(canon(await h.kernel.snapshot()), canon(converged));
  assert.equal(h.daemon.status().inSync, true);
  await h.daemon.stop({ cleanup: false });
});

test('a change refused because its link went down during the cycle waits for the link: no apply-failed, no retry loop', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  // The link goes down between the snapshot and the apply: the nexthop through if1 is refused (ENETDOWN).
  const nh = (await h.kernel.snapshot()).nexthops.find((n) => n.dev === 'if1')!;
  await h.kernel.apply({ op: 'del', kind: 'nexthop', nexthop: nh });
  let downed = false;
  h.port.applyHook = () => {
    if (!downed) {
      downed = true;
      h.kernel.setInterfaces(LINKS.map((l) => (l.name === 'if1' ? { ...l, up: false } : l)), BASE_ADDRESSES);
    }
    return undefined;
  };
  await h.timers.advance(100);
  assert.ok(downed);
  assert.deepEqual(h.events('apply-failed'), []);
  assert.deepEqual(h.events('conflict'), []);
  assert.equal(h.events('waiting-link').filter((f) => f.level === 'info').length, 1);
  const writes = h.port.writes.length;
  await h.timers.advance(10_000);
  assert.equal(h.port.writes.length, writes, 'nothing retried while the link is down');
  h.kernel.setInterfaces(LINKS, BASE_ADDRESSES);
  await h.timers.advance(100);
  assert.ok((await h.kernel.snapshot()).nexthops.some((n) => n.dev === 'if1'), 'restored when the link came up');
  assert.equal(h.daemon.status().inSync, true);
  await h.daemon.stop({ cleanup: false });
});

test('a large cycle logs a summary per kind and its first changes at info level, all at debug; causes are capped', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const before = h.lines.length;
  // 60 LAN routes appear in main at once (each an event and a cause); each is copied into the uplink tables.
  for (let i = 0; i < 60; i++) {
    await h.kernel.apply({ op: 'add', kind: 'route', route: { table: 254, dst: `10.${i}.0.0/24`, type: 'unicast', protocol: 4, scope: 'link', dev: 'if0' } });
  }
  await h.timers.advance(200);
  const lines = h.lines.slice(before).map(parseLine);
  const infoApplies = lines.filter((f) => f.event === 'apply' && f.level === 'info');
  const debugApplies = lines.filter((f) => f.event === 'apply' && f.level === 'debug');
  const summaries = lines.filter((f) => f.event === 'apply-summary');
  assert.equal(summaries.length, 1);
  const total = Number(summaries[0]!.changes);
  assert.ok(total >= 120, `every LAN route copied into both uplink tables: ${total}`);
  assert.match(summaries[0]!.kinds, /add route: \d+/);
  assert.equal(infoApplies.length, CHANGES_SHOWN);
  assert.equal(infoApplies.length + debugApplies.length, total, 'every change is still logged at debug level');
  for (const f of lines.filter((l) => l.cause !== undefined)) assert.match(f.cause, /and \d+ more$/);
  assert.ok(lines.every((f) => (f.cause ?? '').length <= (CAUSE_CHARS + 2) * CAUSES_SHOWN + 20), 'cause fields are short');
  const last = h.daemon.status().lastCycle!;
  assert.equal(last.causes.length, CAUSES_SHOWN + 1);
  assert.match(last.causes.at(-1)!, /^and \d+ more$/);
  await h.daemon.stop({ cleanup: false });
});

/** The base kernel with isp2's DHCP address and default on if2: both uplinks usable. */
function twoUsable(extra: Partial<KernelState> = {}): KernelState {
  const k = baseKernel();
  return { ...k, addresses: [...k.addresses, addr('if2', '203.0.113.7', true)], routes: [dhcpDefault('203.0.113.1')], ...extra, nexthops: extra.nexthops ?? [] };
}

test('a refused nexthop leaves its uplink out of the group while the others balance; retried with backoff, it joins once accepted', async () => {
  const h = await startHarness({ kernel: twoUsable() });
  const heal = h.kernel.failWhen((c) => c.kind === 'nexthop' && c.op !== 'del' && c.nexthop.id === 1001, 'EINVAL');
  await h.kernel.apply({ op: 'del', kind: 'nexthop', nexthop: (await h.kernel.snapshot()).nexthops.find((n) => n.id === 1001)! });
  await h.timers.advance(2_000);
  const snap = await h.kernel.snapshot();
  const group = snap.nexthops.find((n) => n.id === 1000);
  assert.deepEqual(group?.group?.map((m) => m.id), [1002], 'the group balances over the usable uplink');
  assert.ok(snap.routes.some((r) => r.table === 1000 && r.nhid === 1000), 'the balanced default is in place');
  const status = h.daemon.status();
  assert.equal(status.inSync, false);
  assert.match(status.uplinks.find((u) => u.name === 'isp1')!.refused!.join(), /EINVAL/);
  assert.equal(status.uplinks.find((u) => u.name === 'isp1')!.inDefault, false);
  const attempts = () => h.port.writes.filter((c) => c.kind === 'nexthop' && c.op !== 'del' && c.nexthop.id === 1001).length;
  await h.timers.advance(4_000);
  // The first try and retries after 250, 500, 1000, 2000 ms... (RETRY_MIN_MS doubling): about 5 in 6 s, not one per cycle.
  // One more may come from the cycle that the notifications of the first retry's stand-in swap start (pinning is on:
  // the group's replace runs behind a stand-in, whose route moves are notified like any change).
  assert.ok(attempts() >= 4 && attempts() <= 8, `retried with backoff: ${attempts()} tries in 6 s`);
  heal();
  await h.timers.advance(20_000);
  assert.deepEqual((await h.kernel.snapshot()).nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001, 1002], 'joined once accepted');
  assert.equal(h.daemon.status().inSync, true);
});

test('a foreign nexthop holding an uplink\'s id: never in uplinkd\'s group; status does not match and names it; logged once', async () => {
  const foreign = { id: 1001, protocol: 4, gateway: '198.51.100.50', dev: 'if1' };
  const h = await startHarness({ kernel: twoUsable({ nexthops: [foreign] }) });
  await h.timers.advance(100);
  const snap = await h.kernel.snapshot();
  assert.deepEqual(snap.nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1002]);
  const status = h.daemon.status();
  assert.equal(status.inSync, false);
  assert.match(status.collisions!.join(), /^isp1: foreign nexthop 'id 1001 via 198\.51\.100\.50/);
  assert.match(formatDaemonStatus(status), /kernel does NOT match the plan/);
  assert.doesNotMatch(formatDaemonStatus(status), /kernel matches the plan/);
  assert.match(status.uplinks.find((u) => u.name === 'isp1')!.reason, /blocked by collision/);
  h.daemon.nudge('test: another cycle');
  await h.timers.advance(40_000); // and a periodic resync
  const logged = h.lines.map(parseLine).filter((f) => f.event === 'plan' && /collision: foreign nexthop/.test(f.msg ?? ''));
  assert.equal(logged.length, 1, 'said once while the collision stays as it is');
  // The foreign nexthop goes: isp1 joins, status matches again.
  await h.kernel.apply({ op: 'del', kind: 'nexthop', nexthop: foreign });
  await h.timers.advance(1_000);
  assert.deepEqual((await h.kernel.snapshot()).nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001, 1002]);
  assert.equal(h.daemon.status().inSync, true);
  assert.deepEqual(h.daemon.status().collisions, []);
});

test('another program\'s route on an uplink\'s nexthop survives the uplink\'s removal by a reload: the nexthop is kept, said once, deleted once unused', async () => {
  const h = await startHarness({ kernel: twoUsable() });
  await h.timers.advance(100);
  const foreign: Route = { table: 3000, dst: '203.0.113.0/24', type: 'unicast', protocol: 4, scope: 'universe', nhid: 1001 };
  await h.kernel.apply({ op: 'add', kind: 'route', route: foreign });
  writeFileSync(h.file, configText().replace(/  - name: isp1\n(    .*\n)+?(?=  - name: isp2)/, ''));
  const reloaded = await untilDone(h.daemon.reload(), h.timers);
  assert.ok(reloaded.ok, JSON.stringify(reloaded));
  await h.timers.advance(100);
  const snap = await h.kernel.snapshot();
  assert.ok(snap.routes.some((r) => r.table === 3000 && r.dst === '203.0.113.0/24' && r.nhid === 1001), 'the other program\'s route is still there');
  assert.ok(snap.nexthops.some((n) => n.id === 1001), 'its nexthop is kept');
  // The group is replaced without the kept nexthop (not left to shrink by a delete that does not come).
  assert.deepEqual(snap.nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1002]);
  assert.ok(!snap.rules.some((r) => r.table === 1001), 'the removed uplink\'s rules are gone');
  const status = h.daemon.status();
  assert.equal(status.inSync, false);
  assert.equal(status.kept?.length, 1);
  assert.match(status.kept![0]!, /^nexthop id 1001 via 198\.51\.100\.1 dev if1 proto 117 kept: .*route 203\.0\.113\.0\/24 nhid 1001 table 3000 proto static \(protocol static\).*ip route replace/);
  assert.match(formatDaemonStatus(status), /kernel does NOT match the plan: nexthops kept for other programs:\n  nexthop id 1001/);
  h.daemon.nudge('test: another cycle');
  await h.timers.advance(40_000); // and a periodic resync
  assert.equal(h.events('nexthop-kept').length, 1, 'said once while it stays so');
  assert.equal(h.events('nexthop-kept')[0]!.level, 'warn');
  // The other program moves its route off: the next resync deletes the nexthop.
  await h.kernel.apply({ op: 'del', kind: 'route', route: foreign });
  await h.timers.advance(40_000);
  assert.ok(!(await h.kernel.snapshot()).nexthops.some((n) => n.id === 1001), 'deleted once nothing else uses it');
  assert.equal(h.daemon.status().inSync, true);
  assert.deepEqual(h.daemon.status().kept, []);
  await h.daemon.stop({ cleanup: false });
});

test('stop --cleanup keeps a group another program\'s route uses, and its members; everything else of uplinkd goes', async () => {
  const h = await startHarness({ kernel: twoUsable() });
  await h.timers.advance(100);
  const foreign: Route = { table: 3000, dst: '192.0.2.0/24', type: 'unicast', protocol: 12, scope: 'universe', nhid: 1000 };
  await h.kernel.apply({ op: 'add', kind: 'route', route: foreign });
  await h.timers.advance(100);
  await h.daemon.stop({ cleanup: true });
  const state = await h.kernel.snapshot();
  assert.ok(state.routes.some((r) => r.table === 3000 && r.nhid === 1000), 'the other program\'s route is still there');
  assert.deepEqual(state.nexthops.map((n) => n.id).sort(), [1000, 1001, 1002]);
  assert.deepEqual(state.nexthops.find((n) => n.id === 1000)?.group?.map((m) => m.id), [1001, 1002], 'the group is as it was');
  assert.ok(!state.rules.some((r) => r.protocol === 117));
  assert.ok(!state.routes.some((r) => r.protocol === 117));
  const kept = h.events('nexthop-kept').map((f) => f.msg ?? '');
  assert.equal(kept.length, 3, kept.join('\n'));
  assert.match(kept[0]!, /^nexthop id 1000 group .* kept: .*route 192\.0\.2\.0\/24 nhid 1000 table 3000 proto 12 \(protocol 12\)/);
  assert.match(kept[1]!, /^nexthop id 1001 .* kept: .*uplinkd's group id 1000, kept for the same reason/);
});

test('a hook\'s resync that finds nothing to change says so in one info line; the daemon\'s own no-op cycles stay at debug level', async () => {
  const h = await startHarness();
  await h.timers.advance(100);
  const inSync = () => h.events('in-sync');
  const before = inSync().length;
  h.daemon.nudge('hook RENEW on if2');
  await h.timers.advance(100);
  const info = inSync().slice(before).filter((f) => f.level === 'info');
  assert.equal(info.length, 1, h.lines.slice(-5).join('\n'));
  assert.equal(info[0]!.msg, 'resync asked for (hook RENEW on if2): nothing to change');
  assert.match(info[0]!.cause ?? '', /hook RENEW on if2/);
  // A periodic resync with nothing to change: at debug level only.
  const later = inSync().length;
  await h.timers.advance(40_000);
  const resyncs = inSync().slice(later);
  assert.ok(resyncs.length >= 1, 'the periodic resync ran');
  assert.ok(resyncs.every((f) => f.level === 'debug'), JSON.stringify(resyncs));
  await h.daemon.stop({ cleanup: false });
});
