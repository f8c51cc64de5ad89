import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, MONITOR_DEFAULTS } from '../config/defaults';
import type { Config, MonitorConfig, UplinkConfig } from '../config/types';
import { createLogger, parseLine } from '../log';
import { HealthMonitor, type HealthChange, type UplinkEndpoint } from './monitor';
import type { ProbeReply, ProbeSource, ProbeTarget, Prober } from './probers';

const FAST: Omit<MonitorConfig, 'targets'> = {
  ...MONITOR_DEFAULTS,
  intervalMs: 100,
  timeoutMs: 50,
  downAfter: 3,
  upAfter: 3,
  window: 10,
};

function uplink(name: string, index: number, monitor?: Partial<MonitorConfig>): UplinkConfig {
  return {
    name,
    interface: `if${index}`,
    dhcp: true,
    weight: 1,
    tier: 1,
    table: 1001 + index,
    markIndex: index + 1,
    ...(monitor && { monitor: { ...FAST, targets: ['203.0.113.5', '192.0.2.53'], ...monitor } }),
  };
}

function config(uplinks: UplinkConfig[]): Config {
  return {
    file: 'test.yaml',
    uplinks,
    lan: [],
    default: 'balance',
    tableBase: 1000,
    rulePriority: 10000,
    protocol: 117,
    resilient: DEFAULTS.resilient,
    paths: { ...DEFAULTS.paths },
    daemon: DEFAULTS.daemon,
  };
}

/** A prober whose answers the test sets per target ip: a reply, or silence until the deadline. */
class FakeNetwork {
  answer = new Map<string, ProbeReply | 'silent' | { lateMs: number }>();
  opened: ProbeSource[] = [];
  closed: ProbeSource[] = [];
  probes: { source: ProbeSource; target: ProbeTarget }[] = [];
  failOpen: string | undefined;
  /** Source addresses whose probes all vanish (a path dead behind that uplink). */
  silentFrom = new Set<string>();

  create = (_method: MonitorConfig['method'], source: ProbeSource): Prober => {
    if (this.failOpen) throw new Error(this.failOpen);
    this.opened.push(source);
    return {
      probe: (target, waitMs) => {
        this.probes.push({ source, target });
        const a = this.silentFrom.has(source.address) ? 'silent' : this.answer.get(target.ip) ?? { ok: true, rttMs: 1 };
        if (a === 'silent') return new Promise((r) => setTimeout(() => r({ ok: false, error: 'timeout' }), waitMs));
        if ('lateMs' in a) return new Promise((r) => setTimeout(() => r({ ok: true, rttMs: a.lateMs }), a.lateMs));
        return Promise.resolve(a);
      },
      close: () => this.closed.push(source),
    };
  };
}

function nextChange(monitor: HealthMonitor, uplink: string, to?: string): Promise<HealthChange> {
  return new Promise((resolve) => {
    const on = (c: HealthChange) => {
      if (c.uplink !== uplink || (to && c.to !== to)) return;
      monitor.off('change', on);
      resolve(c);
    };
    monitor.on('change', on);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HealthMonitor', () => {
  let monitor: HealthMonitor | undefined;
  afterEach(() => monitor?.stop());

  it('probes from the uplink address, goes up, then down with the failing targets in the reason', async () => {
    const net = new FakeNetwork();
    const endpoints: Record<string, UplinkEndpoint> = { isp1: { interface: 'if1', address: '198.51.100.7', gateway: '198.51.100.1' } };
    monitor = new HealthMonitor(config([uplink('isp1', 1, {})]), (n) => endpoints[n], { createProber: net.create, counters: () => undefined });
    assert.deepEqual(monitor.verdicts(), { isp1: 'unknown' });
    const up = nextChange(monitor, 'isp1');
    monitor.start();
    const first = await up;
    assert.equal(first.from, 'unknown');
    assert.equal(first.to, 'up');
    assert.deepEqual(first.endpoint, endpoints.isp1);
    assert.deepEqual(monitor.verdicts(), { isp1: 'up' });
    assert.deepEqual(net.opened, [{ address: '198.51.100.7', interface: 'if1' }]);
    assert.deepEqual(new Set(net.probes.map((p) => p.target.ip)), new Set(['203.0.113.5', '192.0.2.53']));

    net.answer.set('203.0.113.5', 'silent');
    net.answer.set('192.0.2.53', { ok: false, error: 'host unreachable (from 198.51.100.1)' });
    const down = await nextChange(monitor, 'isp1', 'down');
    assert.equal(down.from, 'up');
    assert.match(down.reason, /^\d+ probe rounds to 203\.0\.113\.5, 192\.0\.2\.53 unanswered within 50 ms \(192\.0\.2\.53 host unreachable \(from 198\.51\.100\.1\)\); nothing answered for \d+ ms$/);
    assert.equal(down.stats.state, 'down');
    assert.equal(monitor.stats().isp1.state, 'down');
    assert.deepEqual(monitor.verdicts(), { isp1: 'down' });

    net.answer.clear();
    const back = await nextChange(monitor, 'isp1', 'up');
    assert.equal(back.from, 'down');
    assert.match(back.reason, /^3 of the last \d probe rounds answered/);
  });

  it('a traffic stall sends its first burst round in the tick that saw it, then one per tick, and logs each step at debug level', async () => {
    const net = new FakeNetwork();
    const lines: string[] = [];
    /** Debug lines with the tick (counters are read once per tick) that wrote them. */
    const ticked: { fields: Record<string, string>; tick: number }[] = [];
    let ticks = 0;
    const endpoints: Record<string, UplinkEndpoint> = { isp1: { interface: 'if1', address: '198.51.100.7' } };
    // A busy interface: 10 packets each way per read, until the path dies and only the sent ones grow.
    let dead = false;
    const c = { rxPackets: 0, txPackets: 0 };
    const counters = () => {
      ticks++;
      c.txPackets += 10;
      if (!dead) c.rxPackets += 10;
      return { ...c };
    };
    const m = { ...MONITOR_DEFAULTS, targets: ['203.0.113.5', '192.0.2.53'] };
    monitor = new HealthMonitor(config([{ ...uplink('isp1', 1), monitor: m }]), (n) => endpoints[n], {
      createProber: net.create,
      counters,
      log: createLogger({
        level: 'debug',
        sink: (l) => {
          lines.push(l);
          ticked.push({ fields: parseLine(l), tick: ticks });
        },
      }),
    });
    const up = nextChange(monitor, 'isp1', 'up');
    monitor.start();
    await up;
    await sleep(1_200);
    net.answer.set('203.0.113.5', 'silent');
    net.answer.set('192.0.2.53', 'silent');
    dead = true;
    const down = await nextChange(monitor, 'isp1', 'down');
    assert.match(down.reason, /packets left through the interface .* none came back/);
    const events = ticked.filter((e) => e.fields.event.startsWith('health_'));
    const suspect = events.findIndex((e) => e.fields.event === 'health_suspect');
    assert.ok(suspect >= 0, lines.join('\n'));
    assert.match(events[suspect].fields.cause, /none came back \(it received \d+\/s before\)/);
    const bursts = events.slice(suspect + 1);
    assert.ok(bursts.length >= 2 && bursts.every((e) => e.fields.event === 'health_burst' && e.fields.spacing_ms === '50'), lines.join('\n'));
    assert.equal(bursts[0].tick, events[suspect].tick, 'the first burst round leaves in the tick that saw the stall');
    assert.equal(bursts[1].tick, bursts[0].tick + 1, 'the next one in the next tick');
  });

  describe('uplinks probing the same targets', () => {
    const endpoints: Record<string, UplinkEndpoint> = {
      isp1: { interface: 'if1', address: '198.51.100.7', gateway: '198.51.100.1' },
      isp2: { interface: 'if2', address: '192.0.2.7', gateway: '192.0.2.1' },
    };
    async function bothUp(net: FakeNetwork, targets: string[]): Promise<HealthMonitor> {
      const m = new HealthMonitor(config([uplink('isp1', 1, { targets }), uplink('isp2', 2, { targets })]), (n) => endpoints[n], {
        createProber: net.create, counters: () => undefined,
      });
      const up = Promise.all([nextChange(m, 'isp1', 'up'), nextChange(m, 'isp2', 'up')]);
      m.start();
      await up;
      return m;
    }

    it('the only shared target dies: all go down in the same moment (one replan, no route flap)', async () => {
      const net = new FakeNetwork();
      const m = (monitor = await bothUp(net, ['203.0.113.5']));
      const downs: string[] = [];
      m.on('change', (c) => downs.push(`${c.uplink} ${c.to}`));
      net.answer.set('203.0.113.5', 'silent');
      const first = await new Promise<HealthChange>((resolve) => m.once('change', resolve));
      assert.equal(first.to, 'down');
      // The other uplink's verdict came in the same turn of the event loop: no replan can run between them.
      assert.deepEqual(downs.sort(), ['isp1 down', 'isp2 down']);
    });

    it('one uplink\'s path dies and 80 ms later the shared targets die for every uplink: still together', async () => {
      const net = new FakeNetwork();
      const m = (monitor = await bothUp(net, ['203.0.113.5', '192.0.2.53']));
      const downs: string[] = [];
      m.on('change', (c) => downs.push(`${c.uplink} ${c.to}`));
      net.silentFrom.add(endpoints.isp1.address!);
      await sleep(80);
      net.answer.set('203.0.113.5', 'silent');
      net.answer.set('192.0.2.53', 'silent');
      await new Promise<HealthChange>((resolve) => m.once('change', resolve));
      assert.deepEqual(downs.sort(), ['isp1 down', 'isp2 down']);
    });

    it('a path dead behind one uplink while the shared targets answer through the other: down at once, the other stays up', async () => {
      const net = new FakeNetwork();
      const m = (monitor = await bothUp(net, ['203.0.113.5', '192.0.2.53']));
      const changes: string[] = [];
      m.on('change', (c) => changes.push(`${c.uplink} ${c.to}`));
      net.silentFrom.add(endpoints.isp1.address!);
      await nextChange(m, 'isp1', 'down');
      await sleep(300);
      assert.deepEqual(changes, ['isp1 down']);
      assert.equal(m.verdicts().isp2, 'up');
    });

    it('a suspicion asks the uplinks sharing its targets for a round at once, not at their next steady round', async () => {
      const net = new FakeNetwork();
      const targets = ['203.0.113.5', '192.0.2.53'];
      // isp2's steady round comes every 30 s: any probe of its after the first rounds is one it was asked for.
      const m = (monitor = new HealthMonitor(config([uplink('isp1', 1, { targets }), uplink('isp2', 2, { targets, intervalMs: 30_000 })]),
        (n) => endpoints[n], { createProber: net.create, counters: () => undefined }));
      const up = Promise.all([nextChange(m, 'isp1', 'up'), nextChange(m, 'isp2', 'up')]);
      m.start();
      await up;
      await sleep(100);
      const start = net.probes.length;
      net.silentFrom.add(endpoints.isp1.address!);
      await nextChange(m, 'isp1', 'down');
      const sources = net.probes.slice(start).map((p) => (p.source.address === endpoints.isp2.address ? 'isp2' : 'isp1'));
      // Asked when the verdict is due, isp2's round would follow all of isp1's burst rounds; asked at the
      // suspicion, it goes out while isp1's burst is still running.
      const firstIsp2 = sources.indexOf('isp2');
      assert.ok(firstIsp2 >= 0 && firstIsp2 < sources.lastIndexOf('isp1'), `probe order after the path died: ${sources.join(' ')}`);
      assert.equal(m.verdicts().isp2, 'up');
    });
  });

  it('leaves unmonitored uplinks out and does not probe an uplink without an address', async () => {
    const net = new FakeNetwork();
    const endpoints: Record<string, UplinkEndpoint> = { isp1: { interface: 'if1' }, isp2: { interface: 'if2', address: '192.0.2.7' } };
    monitor = new HealthMonitor(config([uplink('isp1', 1, {}), uplink('isp2', 2)]), (n) => endpoints[n], {
      createProber: net.create,
      counters: () => undefined,
    });
    monitor.start();
    await sleep(60);
    assert.deepEqual(monitor.verdicts(), { isp1: 'unknown' });
    assert.deepEqual(net.opened, []);
    assert.deepEqual(net.probes, []);
  });

  it('goes back to unknown when the address goes, and reopens its socket on a new address', async () => {
    const net = new FakeNetwork();
    const endpoint: UplinkEndpoint = { interface: 'if1', address: '198.51.100.7' };
    monitor = new HealthMonitor(config([uplink('isp1', 1, {})]), () => endpoint, { createProber: net.create, counters: () => undefined });
    const up = nextChange(monitor, 'isp1', 'up');
    monitor.start();
    await up;
    delete endpoint.address;
    const gone = await nextChange(monitor, 'isp1');
    assert.equal(gone.to, 'unknown');
    assert.equal(gone.reason, 'if1 has no address: not probed');
    assert.deepEqual(net.closed, [{ address: '198.51.100.7', interface: 'if1' }]);
    endpoint.address = '198.51.100.9';
    await nextChange(monitor, 'isp1', 'up');
    assert.deepEqual(net.opened.at(-1), { address: '198.51.100.9', interface: 'if1' });
  });

  it('is not probed while its link is down, and starts afresh when it is back: failures of the outage never make a verdict', async () => {
    const net = new FakeNetwork();
    const endpoint: UplinkEndpoint = { interface: 'if1', address: '198.51.100.7' };
    monitor = new HealthMonitor(config([uplink('isp1', 1, {})]), () => endpoint, { createProber: net.create, counters: () => undefined });
    const up = nextChange(monitor, 'isp1', 'up');
    monitor.start();
    await up;
    // The link goes down: its probes would fail locally (ENETUNREACH), as many rounds as the outage lasts.
    net.answer.set('203.0.113.5', { ok: false, error: 'network unreachable' });
    net.answer.set('192.0.2.53', { ok: false, error: 'network unreachable' });
    endpoint.linkDown = true;
    const gone = await nextChange(monitor, 'isp1');
    assert.equal(gone.to, 'unknown');
    assert.equal(gone.reason, 'if1 is down: not probed');
    const sent = net.probes.length;
    await sleep(300);
    assert.equal(net.probes.length, sent, 'no probe while the link is down');
    // Back, and the path works: up again with no down verdict in between.
    net.answer.clear();
    const changes: string[] = [];
    monitor.on('change', (c: HealthChange) => changes.push(c.to));
    delete endpoint.linkDown;
    await nextChange(monitor, 'isp1', 'up');
    assert.deepEqual(changes, ['up']);
  });

  it('judges on its own clock and hands out wall-clock times: a wall clock stepped back an hour moves `since`, not the verdicts', async () => {
    const net = new FakeNetwork();
    let step = 0;
    monitor = new HealthMonitor(config([uplink('isp1', 1, { targets: ['203.0.113.5'] })]), () => ({ interface: 'if1', address: '198.51.100.7' }), {
      createProber: net.create,
      counters: () => undefined,
      wallNow: () => Date.now() + step,
    });
    const up = nextChange(monitor, 'isp1', 'up');
    monitor.start();
    const first = await up;
    assert.ok(Math.abs(first.stats.since - Date.now()) < 5_000, 'since on the wall clock');
    step = -3_600_000;
    net.answer.set('203.0.113.5', 'silent');
    const down = await nextChange(monitor, 'isp1', 'down');
    const wall = Date.now() - 3_600_000;
    assert.ok(down.stats.since <= wall && wall - down.stats.since < 5_000, `since ${down.stats.since} on the stepped wall clock ${wall}`);
    assert.ok(Math.abs(monitor.stats().isp1.since - down.stats.since) < 2, 'stats() agrees');
  });

  it('a socket that cannot be opened fails the rounds with the reason', async () => {
    const net = new FakeNetwork();
    net.failOpen = 'cannot open an ICMP socket on if1 from 198.51.100.7: not permitted';
    monitor = new HealthMonitor(config([uplink('isp1', 1, { targets: ['203.0.113.5'] })]), () => ({ interface: 'if1', address: '198.51.100.7' }), {
      createProber: net.create,
      counters: () => undefined,
    });
    monitor.start();
    const down = await nextChange(monitor, 'isp1', 'down');
    assert.ok(down.reason.includes(`(203.0.113.5 ${net.failOpen})`), down.reason);
  });

  it('reopens the socket of a down uplink now and then (a device recreated with the same address)', async () => {
    const net = new FakeNetwork();
    let offset = 0;
    net.answer.set('203.0.113.5', 'silent');
    monitor = new HealthMonitor(config([uplink('isp1', 1, { targets: ['203.0.113.5'] })]), () => ({ interface: 'if1', address: '198.51.100.7' }), {
      createProber: net.create,
      counters: () => undefined,
      now: () => Date.now() + offset,
    });
    monitor.start();
    await nextChange(monitor, 'isp1', 'down');
    await sleep(30);
    assert.equal(net.opened.length, 1, 'not reopened before REOPEN_DOWN_MS');
    offset += 6000;
    await sleep(30);
    assert.equal(net.opened.length, 2);
    assert.equal(net.closed.length, 1);
  });

  it('does not reopen a down uplink\'s socket while answers come back (that would delay recovery)', async () => {
    const net = new FakeNetwork();
    let offset = 0;
    net.answer.set('203.0.113.5', 'silent');
    monitor = new HealthMonitor(config([uplink('isp1', 1, { targets: ['203.0.113.5'], upAfter: 1000 })]), () => ({ interface: 'if1', address: '198.51.100.7' }), {
      createProber: net.create,
      counters: () => undefined,
      now: () => Date.now() + offset,
    });
    monitor.start();
    await nextChange(monitor, 'isp1', 'down');
    net.answer.delete('203.0.113.5'); // answers again; upAfter keeps it down meanwhile
    await sleep(250);
    offset += 6000;
    await sleep(60);
    assert.equal(net.opened.length, 1, 'still the first socket');
    assert.equal(net.closed.length, 0);
  });

  it('answers after the timeout keep a slow uplink from going down', async () => {
    const net = new FakeNetwork();
    // Every answer comes 6 timeouts late: each probe makes the uplink suspect, the late answer ends it.
    net.answer.set('203.0.113.5', { lateMs: 300 });
    monitor = new HealthMonitor(
      config([uplink('isp1', 1, { targets: ['203.0.113.5'], downAfter: 12 })]),
      () => ({ interface: 'if1', address: '198.51.100.7' }),
      { createProber: net.create, counters: () => undefined },
    );
    const changes: HealthChange[] = [];
    monitor.on('change', (c) => changes.push(c));
    monitor.start();
    await sleep(2500);
    assert.ok(!changes.some((c) => c.to === 'down'), changes.map((c) => c.to).join());
    assert.ok((monitor.stats().isp1.rttMs ?? 0) >= 300);
    assert.equal(monitor.stats().isp1.lossPct, 0, 'a late answer is not a lost probe');
  });

  it('resolves host-name targets and probes their address', async () => {
    const net = new FakeNetwork();
    monitor = new HealthMonitor(
      config([uplink('isp1', 1, { targets: ['probe.example.net'] })]),
      () => ({ interface: 'if1', address: '198.51.100.7' }),
      { createProber: net.create, counters: () => undefined, resolve: async () => '203.0.113.9' },
    );
    const up = nextChange(monitor, 'isp1', 'up');
    monitor.start();
    await up;
    assert.deepEqual(net.probes.at(-1)?.target, { name: 'probe.example.net', ip: '203.0.113.9' });
  });

  it('keeps the state of unchanged uplinks across reconfigure and stops removed ones', async () => {
    const net = new FakeNetwork();
    const ep = (n: string) => ({ interface: n === 'isp1' ? 'if1' : 'if2', address: n === 'isp1' ? '198.51.100.7' : '192.0.2.7' });
    monitor = new HealthMonitor(config([uplink('isp1', 1, {}), uplink('isp2', 2, {})]), ep, { createProber: net.create, counters: () => undefined });
    const up1 = nextChange(monitor, 'isp1', 'up');
    const up2 = nextChange(monitor, 'isp2', 'up');
    monitor.start();
    await Promise.all([up1, up2]);
    monitor.reconfigure(config([uplink('isp1', 1, {}), uplink('isp2', 2)]));
    assert.deepEqual(monitor.verdicts(), { isp1: 'up' });
    assert.deepEqual(net.closed, [{ address: '192.0.2.7', interface: 'if2' }]);
    monitor.reconfigure(config([uplink('isp1', 1, { downAfter: 4 })]));
    assert.deepEqual(monitor.verdicts(), { isp1: 'unknown' }, 'changed settings start over');
  });

  it('stop() ends all probing', async () => {
    const net = new FakeNetwork();
    monitor = new HealthMonitor(config([uplink('isp1', 1, {})]), () => ({ interface: 'if1', address: '198.51.100.7' }), {
      createProber: net.create,
      counters: () => undefined,
    });
    monitor.start();
    await sleep(30);
    monitor.stop();
    const count = net.probes.length;
    assert.ok(count > 0);
    await sleep(40);
    assert.equal(net.probes.length, count);
    assert.equal(net.closed.length, 1);
  });
});
