import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UplinkdError, type ConfigLocation } from '../errors';
import { DEFAULTS, MONITOR_DEFAULTS } from './defaults';
import { describeConfigError, loadConfig, loadConfigBytes, parseConfig } from './load';

const FILE = '/etc/uplinkd/uplinkd.yaml';

const ISSUE_EXAMPLE = `# /etc/uplinkd/uplinkd.yaml
uplinks:
  - name: isp1                 # also the table's name: \`ip route show table isp1\` works
    interface: if1
    address: 198.51.100.2/24   # static uplink: address and gateway given
    gateway: 198.51.100.1
    weight: 1
  - name: isp2
    interface: vlan102
    dhcp: true                 # address and gateway come from the current DHCP lease
    weight: 3
lan: [if0]                     # networks on these interfaces go into every uplink table
default: balance               # balance: weighted multipath over usable uplinks
                               # failover: the first usable uplink, in list order
`;

const MONITOR_EXAMPLE = `uplinks:
  - name: isp1
    interface: if1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
    tier: 1                       # lower tiers are used first; balance by weight within a tier
    monitor:
      targets: [203.0.113.5, 192.0.2.53]
`;

/** A valid static uplink to build bad configs from; `extra` lines are appended to it. */
function staticUplink(name: string, iface: string, address: string, gateway: string, extra = ''): string {
  return `  - name: ${name}\n    interface: ${iface}\n    address: ${address}\n    gateway: ${gateway}\n${extra}`;
}

interface Failure {
  message: string;
  location: ConfigLocation;
  problems: { location: ConfigLocation; message: string }[];
}

function failure(text: string): Failure {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof UplinkdError, 'expected an UplinkdError');
    assert.equal(e.code, 'config');
    assert.ok(e.detail.location, 'expected a location');
    return {
      message: e.message,
      location: e.detail.location,
      problems: e.detail.cause as Failure['problems'],
    };
  }
  assert.fail('expected the configuration to be rejected');
}

/** The one problem of a config expected to have exactly one, with its message line. */
function onlyProblem(text: string): { location: ConfigLocation; line: string } {
  const f = failure(text);
  assert.equal(f.problems.length, 1, `expected one problem, got:\n${f.message}`);
  assert.deepEqual(f.location, f.problems[0].location);
  return { location: f.location, line: f.message };
}

test('the issue example is accepted with its values and the defaults', () => {
  const c = parseConfig(ISSUE_EXAMPLE, FILE);
  assert.equal(c.file, FILE);
  assert.deepEqual(c.uplinks, [
    {
      name: 'isp1', interface: 'if1', dhcp: false,
      address: { ip: '198.51.100.2', prefixlen: 24, network: '198.51.100.0/24' },
      gateway: '198.51.100.1', weight: 1, tier: DEFAULTS.tier, table: 1141, markIndex: 26,
    },
    { name: 'isp2', interface: 'vlan102', dhcp: true, weight: 3, tier: DEFAULTS.tier, table: 1727, markIndex: 123 },
  ]);
  assert.deepEqual(c.lan, ['if0']);
  assert.equal(c.default, 'balance');
  assert.equal(c.tableBase, 1000);
  assert.equal(c.rulePriority, 10000);
  assert.equal(c.protocol, 117);
  assert.deepEqual(c.resilient, DEFAULTS.resilient);
  assert.equal(c.multipathHash, undefined);
  assert.deepEqual(c.paths, DEFAULTS.paths);
  assert.notEqual(c.paths.leases, DEFAULTS.paths.leases, 'defaults must be copied, not shared');
  assert.deepEqual(c.daemon, DEFAULTS.daemon);
});

test('the health-monitoring example is accepted with monitor defaults', () => {
  const c = parseConfig(MONITOR_EXAMPLE, FILE);
  assert.equal(c.uplinks.length, 1);
  assert.equal(c.uplinks[0].tier, 1);
  assert.equal(c.uplinks[0].table, 1141);
  assert.deepEqual(c.uplinks[0].monitor, { ...MONITOR_DEFAULTS, targets: ['203.0.113.5', '192.0.2.53'] });
  assert.deepEqual(c.lan, []);
});

test('every option is read and converted', () => {
  const c = parseConfig(`uplinks:
${staticUplink('isp1', 'if1', '198.51.100.2/24', '198.51.100.1', `    weight: 256
    tier: 0
    table: 200
    monitor:
      targets: [203.0.113.5, probe.example.net]
      method: tcp
      port: 443
      interval: 250ms
      timeout: 1.5s
      quorum: 2
      down_after: 3
      up_after: 5
      window: 20
      degraded_loss: 12.5
      degraded_rtt: 1s
      on_degraded: reduce
`)}  - name: isp2
    interface: eth2
    dhcp: true
lan: [if0, br-lan]
default: failover
table_base: 2000
rule_priority: 20000
protocol: 200
resilient: {buckets: 64, idle_timer: 10, unbalanced_timer: 120}
multipath_hash: l4
paths:
  rt_tables: /run/t.conf
  rt_protos: /run/p.conf
  leases: [/x/*.lease]
  control_socket: /run/x.sock
  hooks_dir: /etc/x/hooks
daemon: {resync_interval: 2m, debounce: 20}
`, FILE);
  assert.equal(c.default, 'failover');
  assert.equal(c.tableBase, 2000);
  assert.equal(c.rulePriority, 20000);
  assert.equal(c.protocol, 200);
  assert.deepEqual(c.resilient, { buckets: 64, idleTimer: 10, unbalancedTimer: 120 });
  assert.equal(c.multipathHash, 'l4');
  assert.deepEqual(c.paths, {
    rtTables: '/run/t.conf', rtProtos: '/run/p.conf', leases: ['/x/*.lease'],
    controlSocket: '/run/x.sock', hooksDir: '/etc/x/hooks',
  });
  assert.deepEqual(c.daemon, { resyncMs: 120_000, debounceMs: 20 });
  assert.deepEqual(c.lan, ['if0', 'br-lan']);
  assert.equal(c.uplinks[0].weight, 256);
  assert.equal(c.uplinks[0].tier, 0);
  assert.equal(c.uplinks[0].table, 200);
  // Derived from the name and table_base (src/config/identity.ts).
  assert.equal(c.uplinks[1].table, 2727);
  assert.deepEqual(c.uplinks[0].monitor, {
    targets: ['203.0.113.5', 'probe.example.net'], method: 'tcp', port: 443, intervalMs: 250, timeoutMs: 1500,
    quorum: 2, downAfter: 3, upAfter: 5, window: 20, degradedLossPct: 12.5, degradedRttMs: 1000, onDegraded: 'reduce',
  });
  assert.equal(parseConfig(`${MONITOR_EXAMPLE}multipath_hash: l3\n`, FILE).multipathHash, 'l3');
});

test('YAML syntax errors name file, line and column', () => {
  const f = failure('uplinks:\n  - name: isp1\n    interface: [if1\n  - name: isp2\n');
  assert.equal(f.location.file, FILE);
  assert.equal(f.location.line, 4);
  assert.equal(f.location.field, '');
  assert.match(f.message, /^\/etc\/uplinkd\/uplinkd\.yaml:4:\d+: YAML syntax: /);

  const tab = failure('uplinks:\n\t- name: isp1\n');
  assert.equal(tab.location.line, 2);
  assert.equal(tab.location.column, 1);

  const dup = failure(`${MONITOR_EXAMPLE}lan: [a]\nlan: [b]\n`);
  assert.equal(dup.location.line, 10);
  assert.match(dup.message, /unique/);
});

test('unknown keys are reported at the key, with the closest known key', () => {
  const { location, line } = onlyProblem(MONITOR_EXAMPLE.replace('gateway:', 'gatway:'));
  assert.deepEqual(location, { file: FILE, line: 5, column: 5, field: 'uplinks[0].gatway' });
  assert.match(line, /^\/etc\/uplinkd\/uplinkd\.yaml:5:5: uplinks\[0\]\.gatway: unknown key 'gatway', did you mean 'gateway'\?/);
  assert.match(line, /expected one of: name, interface, dhcp, learn, address, peer, gateway/);
  // The missing gateway is not reported: the typo is. Without a near key, no suggestion.
  const far = onlyProblem(`${MONITOR_EXAMPLE}completely_unrelated: 1\n`);
  assert.deepEqual(far.location, { file: FILE, line: 9, column: 1, field: 'completely_unrelated' });
  assert.doesNotMatch(far.line, /did you mean/);
  const nested = failure(MONITOR_EXAMPLE.replace('      targets:', '      methd: tcp\n      x: 1\n      targets:'));
  assert.deepEqual(nested.problems.map((p) => p.location), [
    { file: FILE, line: 8, column: 7, field: 'uplinks[0].monitor.methd' },
    { file: FILE, line: 9, column: 7, field: 'uplinks[0].monitor.x' },
  ]);
  assert.match(nested.message, /methd', did you mean 'method'\?/);
});

test('a typo of a required key reports the typo only once per field', () => {
  const f = failure(MONITOR_EXAMPLE.replace('gateway:', 'gatway:'));
  assert.equal(f.problems.length, 1, f.message);
});

test('bad CIDR and bad addresses', () => {
  const cases: [string, RegExp][] = [
    ['198.51.100.2', /prefix length is missing/],
    ['198.51.100.300/24', /not an IPv4 address with prefix length/],
    ['198.51.100.2/33', /not an IPv4 address with prefix length/],
    ['198.51.100.0/24', /network address of 198\.51\.100\.0\/24/],
    ['198.51.100.255/24', /broadcast address/],
    ['127.0.0.2/8', /loopback/],
    ['198.51.100.2/0', /prefix length 0/],
  ];
  for (const [address, expected] of cases) {
    const { location, line } = onlyProblem(MONITOR_EXAMPLE.replace('198.51.100.2/24', address));
    assert.deepEqual(location, { file: FILE, line: 4, column: 14, field: 'uplinks[0].address' }, address);
    assert.match(line, expected, address);
  }
  const gw = onlyProblem(MONITOR_EXAMPLE.replace('gateway: 198.51.100.1', 'gateway: 198.51.1001'));
  assert.equal(gw.location.field, 'uplinks[0].gateway');
  assert.match(gw.line, /'198\.51\.1001' is not an IPv4 address/);
  // A /31 has no network or broadcast address: both ends are hosts.
  const p2p = parseConfig(MONITOR_EXAMPLE.replace('198.51.100.2/24', '198.51.100.0/31')
    .replace('gateway: 198.51.100.1', 'gateway: 198.51.100.1'), FILE);
  assert.equal(p2p.uplinks[0].address?.network, '198.51.100.0/31');
});

test('a gateway outside the network is an on-link gateway; inside it must be another host address', () => {
  // Issue 8: the cloud form, a /32 with its gateway outside the prefix, is accepted.
  const cloud = parseConfig(`uplinks:\n${staticUplink('cloud', 'ens5', '203.0.113.2/32', '172.31.1.1')}`, FILE);
  assert.equal(cloud.uplinks[0]!.gateway, '172.31.1.1');
  const text = `uplinks:\n${staticUplink('isp0', 'if0', '192.0.2.2/24', '192.0.2.1')}${staticUplink('isp1', 'if1', '198.51.100.2/24', '10.0.0.1')}`;
  assert.equal(parseConfig(text, FILE).uplinks[1]!.gateway, '10.0.0.1');
  for (const [gateway, expected] of [['198.51.100.2', /own address/], ['198.51.100.0', /network address/],
    ['198.51.100.255', /broadcast address/]] as const) {
    const p = onlyProblem(MONITOR_EXAMPLE.replace('gateway: 198.51.100.1', `gateway: ${gateway}`));
    assert.equal(p.location.field, 'uplinks[0].gateway');
    assert.match(p.line, expected);
  }
});

test('duplicate uplink names, interfaces and tables point at the second one', () => {
  const names = onlyProblem(`uplinks:\n${staticUplink('isp1', 'if1', '192.0.2.2/24', '192.0.2.1')}${staticUplink('isp1', 'if2', '198.51.100.2/24', '198.51.100.1')}`);
  assert.deepEqual(names.location, { file: FILE, line: 6, column: 11, field: 'uplinks[1].name' });
  assert.match(names.line, /'isp1' is also used by uplinks\[0\]\.name \(line 2\)/);

  const ifaces = onlyProblem(`uplinks:\n${staticUplink('isp1', 'if1', '192.0.2.2/24', '192.0.2.1')}  - {name: isp2, interface: if1, dhcp: true}\n`);
  assert.deepEqual(ifaces.location, { file: FILE, line: 6, column: 29, field: 'uplinks[1].interface' });
  assert.match(ifaces.line, /interface 'if1' is also used by uplinks\[0\]\.interface/);

  const explicit = onlyProblem(`uplinks:
  - {name: isp1, interface: if1, dhcp: true, table: 7}
  - {name: isp2, interface: if2, dhcp: true, table: 7}
`);
  assert.deepEqual(explicit.location, { file: FILE, line: 3, column: 53, field: 'uplinks[1].table' });
  assert.match(explicit.line, /table 7 is also the table of uplinks\[0\]/);

  // isp2's derived table would be 1727, which isp1 takes explicitly: the explicit number wins, isp2 moves.
  const derived = parseConfig(`uplinks:
  - {name: isp1, interface: if1, dhcp: true, table: 1727}
  - {name: isp2, interface: if2, dhcp: true}
`, FILE);
  assert.equal(derived.uplinks[0]!.table, 1727);
  assert.notEqual(derived.uplinks[1]!.table, 1727);
  assert.ok(derived.uplinks[1]!.table > 1000 && derived.uplinks[1]!.table < 2000);
});

test('reserved and conflicting table numbers', () => {
  for (const [table, expected] of [['254', /'main'/], ['0', /out of range/], ['1000', /table_base/], ['4294967296', /out of range/]] as const) {
    const p = onlyProblem(`uplinks:\n  - {name: isp1, interface: if1, dhcp: true, table: ${table}}\n`);
    assert.equal(p.location.field, 'uplinks[0].table', table);
    assert.match(p.line, expected, table);
  }
  // table_base 200: uplink a's home slot 53 would be 253 (the kernel's default table): it takes another.
  const c = parseConfig(`table_base: 200\nuplinks:\n  - {name: a, interface: if1, dhcp: true}\n  - {name: b, interface: if2, dhcp: true}\n`, FILE);
  assert.deepEqual(c.uplinks.map((u) => u.table >= 201 && u.table <= 1199 && ![253, 254, 255].includes(u.table)), [true, true]);
  assert.equal(c.uplinks[1]!.table, 493);
  assert.match(onlyProblem(`table_base: 255\n${MONITOR_EXAMPLE}`).line, /table_base: 255 is the kernel's 'local' table/);
});

test('an interface cannot be both LAN and uplink; uplinks may share a subnet but not an address', () => {
  const lan = onlyProblem(`${MONITOR_EXAMPLE}lan: [if0, if1]\n`);
  assert.deepEqual(lan.location, { file: FILE, line: 9, column: 12, field: 'lan[1]' });
  assert.match(lan.line, /'if1' is also uplinks\[0\]\.interface \(line 3\)/);

  // Issue 8: two consumer routers on 192.168.1.0/24, both gateway .1, on different NICs.
  const shared = parseConfig(`uplinks:\n${staticUplink('home1', 'eth1', '192.168.1.2/24', '192.168.1.1')}${staticUplink('home2', 'eth2', '192.168.1.3/24', '192.168.1.1')}`, FILE);
  assert.deepEqual(shared.uplinks.map((u) => [u.address?.network, u.gateway]), [['192.168.1.0/24', '192.168.1.1'], ['192.168.1.0/24', '192.168.1.1']]);
  const same = onlyProblem(`uplinks:\n${staticUplink('isp1', 'if1', '198.51.100.2/24', '198.51.100.1')}${staticUplink('isp2', 'if2', '198.51.100.2/25', '198.51.100.1')}`);
  assert.deepEqual(same.location, { file: FILE, line: 8, column: 14, field: 'uplinks[1].address' });
  assert.match(same.line, /address '198\.51\.100\.2' is also used by uplinks\[0\]\.address/);
});

test('missing required fields are reported at the uplink', () => {
  const f = failure(`uplinks:\n  - name: isp1\n    interface: if1\n  - interface: if2\n    dhcp: true\n`);
  assert.deepEqual(f.problems.map((p) => p.location), [
    { file: FILE, line: 2, column: 5, field: 'uplinks[0].address' },
    { file: FILE, line: 2, column: 5, field: 'uplinks[0].gateway' },
    { file: FILE, line: 4, column: 5, field: 'uplinks[1].name' },
  ]);
  assert.match(f.message, /uplinks\[0\]\.address: missing \(a static uplink needs address and gateway \(or peer, for a point-to-point link\); set learn: true/);
  assert.equal(f.message.split('\n').length, 3);

  assert.equal(onlyProblem('lan: [if0]\n').location.field, 'uplinks');
  assert.match(onlyProblem('uplinks: []\n').line, /uplinks: the list is empty/);
  assert.match(onlyProblem('').line, /the file is empty/);
  const noValue = onlyProblem(MONITOR_EXAMPLE.replace('gateway: 198.51.100.1', 'gateway:'));
  assert.deepEqual(noValue.location, { file: FILE, line: 5, column: 5, field: 'uplinks[0].gateway' });
  const noTargets = onlyProblem(MONITOR_EXAMPLE.replace('targets: [203.0.113.5, 192.0.2.53]', 'method: icmp'));
  assert.equal(noTargets.location.field, 'uplinks[0].monitor.targets');
});

test('dhcp: true forbids address and gateway', () => {
  const f = failure(`uplinks:\n  - name: isp1\n    interface: if1\n    dhcp: true\n    address: 198.51.100.2/24\n    gateway: 198.51.100.1\n`);
  assert.deepEqual(f.problems.map((p) => [p.location.field, p.location.line, p.location.column]), [
    ['uplinks[0].address', 5, 14], ['uplinks[0].gateway', 6, 14],
  ]);
  assert.match(f.message, /not allowed with dhcp: true/);
  assert.match(onlyProblem(MONITOR_EXAMPLE.replace('tier: 1', 'dhcp: yes')).line,
    /uplinks\[0\]\.dhcp: expected true or false, got the string 'yes'/);
});

test('weight, tier and other numbers out of range or of the wrong type', () => {
  const cases: [string, string, RegExp][] = [
    ['weight: 0', 'uplinks[0].weight', /0 is out of range \(expected an integer from 1 to 256\)/],
    ['weight: 257', 'uplinks[0].weight', /257 is out of range/],
    ['weight: 1.5', 'uplinks[0].weight', /expected an integer from 1 to 256, got the number 1\.5/],
    ["weight: '3'", 'uplinks[0].weight', /got the string '3'/],
    ['tier: -1', 'uplinks[0].tier', /out of range/],
    ['name: 123', 'uplinks[0].name', /expected a name, got the number 123/],
    ['name: main', 'uplinks[0].name', /iproute2 table name already/],
    ['name: uplinkd', 'uplinks[0].name', /'uplinkd' is the name of uplinkd's balance table/],
    ['name: UPLINKD', 'uplinks[0].name', /the name of uplinkd's balance table/],
    ['name: 1isp', 'uplinks[0].name', /expected a letter/],
    ['interface: averyveryverylongname', 'uplinks[0].interface', /longer than 15/],
  ];
  const withWeight = MONITOR_EXAMPLE.replace('    tier:', '    weight: 2\n    tier:');
  for (const [line, field, expected] of cases) {
    const [key] = line.split(':');
    const text = withWeight.replace(new RegExp(`${key}: .*`), line);
    const p = onlyProblem(text);
    assert.equal(p.location.field, field, line);
    assert.match(p.line, expected, line);
  }
  const topCases: [string, string, RegExp][] = [
    ['rule_priority: 32000', 'rule_priority', /out of range \(expected an integer from 1 to 31766\)/],
    ['protocol: 4', 'protocol', /out of range/],
    ['protocol: 16', 'protocol', /protocol of dhcp/],
    ['default: roundrobin', 'default', /expected one of balance, failover, got the string 'roundrobin'/],
    ['multipath_hash: l7', 'multipath_hash', /expected one of l3, l4/],
    ['resilient: {buckets: 0}', 'resilient.buckets', /out of range/],
    ['paths: {hooks_dir: hooks}', 'paths.hooks_dir', /relative/],
    ['lan: if0', 'lan', /expected a list of interface names, got the string 'if0'/],
    ['uplinks: 3', 'uplinks', /expected a list of uplinks/],
  ];
  for (const [top, field, expected] of topCases) {
    const text = top.startsWith('uplinks') ? top + '\n' : `${MONITOR_EXAMPLE}${top}\n`;
    const p = onlyProblem(text);
    assert.equal(p.location.field, field, top);
    assert.match(p.line, expected, top);
  }
  const buckets = onlyProblem(`resilient: {buckets: 1}\nuplinks:\n  - {name: a, interface: if1, dhcp: true}\n  - {name: b, interface: if2, dhcp: true}\n`);
  assert.deepEqual(buckets.location, { file: FILE, line: 1, column: 22, field: 'resilient.buckets' });
});

test('durations: milliseconds or strings with units', () => {
  const monitor = (extra: string) => parseConfig(MONITOR_EXAMPLE + extra, FILE).uplinks[0].monitor;
  assert.equal(monitor('      interval: 250\n')?.intervalMs, 250);
  assert.equal(monitor('      interval: 250ms\n')?.intervalMs, 250);
  assert.equal(monitor('      interval: 1s\n')?.intervalMs, 1000);
  assert.equal(monitor('      timeout: 1.5s\n')?.timeoutMs, 1500);
  assert.equal(monitor('      degraded_rtt: 2m\n')?.degradedRttMs, 120_000);
  assert.equal(parseConfig(`${MONITOR_EXAMPLE}daemon: {debounce: 0}\n`, FILE).daemon.debounceMs, 0);
  for (const [value, expected] of [['1.5x', /got the string '1\.5x'/], ['5ms', /too short/], ['1.5', /got the number 1\.5/],
    ['-1s', /got the string '-1s'/]] as const) {
    const p = onlyProblem(`${MONITOR_EXAMPLE}      interval: ${value}\n`);
    assert.deepEqual(p.location, { file: FILE, line: 9, column: 17, field: 'uplinks[0].monitor.interval' }, value);
    assert.match(p.line, expected, value);
  }
});

test('monitor targets and quorum', () => {
  const quorum = onlyProblem(`${MONITOR_EXAMPLE}      quorum: 3\n`);
  assert.deepEqual(quorum.location, { file: FILE, line: 9, column: 15, field: 'uplinks[0].monitor.quorum' });
  assert.match(quorum.line, /3 is more than the 2 target\(s\) \(expected 1 to 2\)/);
  const badTarget = onlyProblem(MONITOR_EXAMPLE.replace('192.0.2.53', '192.0.2.530'));
  assert.deepEqual(badTarget.location, { file: FILE, line: 8, column: 30, field: 'uplinks[0].monitor.targets[1]' });
  assert.match(onlyProblem(MONITOR_EXAMPLE.replace('192.0.2.53', '203.0.113.5')).line, /listed twice/);
  assert.match(onlyProblem(MONITOR_EXAMPLE.replace('[203.0.113.5, 192.0.2.53]', '[]')).line, /the list is empty/);
  assert.match(onlyProblem(`${MONITOR_EXAMPLE}      port: 80\n`).line, /does not apply to method icmp/);
  assert.match(onlyProblem(`${MONITOR_EXAMPLE}      on_degraded: drop\n`).line, /expected one of keep, reduce, remove/);
});

test('all problems are collected in one pass, in file order', () => {
  const f = failure(`default: sideways
uplinks:
  - name: isp1
    interface: if1
    address: 198.51.100.2/24
    gateway: 198.51.100.2
    weight: 0
  - name: isp1
    interface: if2
    dhcp: true
    mtu: 1500
`);
  assert.deepEqual(f.problems.map((p) => `${p.location.line}:${p.location.field}`), [
    '1:default', '6:uplinks[0].gateway', '7:uplinks[0].weight', '8:uplinks[1].name', '11:uplinks[1].mtu',
  ]);
  assert.deepEqual(f.location, f.problems[0].location);
  assert.equal(f.message.split('\n').length, 5);
  const err = new UplinkdError('config', f.message, { location: f.location, cause: f.problems });
  assert.match(describeConfigError(err), /^invalid configuration \(5 problems\):\n\/etc\/uplinkd\/uplinkd\.yaml:1:10: default: /);
});

test('loadConfig reads a file and names it in errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'uplinkd-config-'));
  try {
    const good = join(dir, 'good.yaml');
    await writeFile(good, ISSUE_EXAMPLE);
    const c = await loadConfig(good);
    assert.equal(c.file, good);
    assert.equal(c.uplinks[1].name, 'isp2');

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, MONITOR_EXAMPLE.replace('weight', 'x').replace('tier: 1', 'tier: x'));
    await assert.rejects(loadConfig(bad), (e: unknown) =>
      e instanceof UplinkdError && e.detail.location?.file === bad && e.message.startsWith(`${bad}:6:11: uplinks[0].tier:`));

    const missing = join(dir, 'missing.yaml');
    await assert.rejects(loadConfig(missing), (e: unknown) =>
      e instanceof UplinkdError && e.code === 'config' && e.detail.errno === 'ENOENT' && e.message.includes(missing));
    await assert.rejects(loadConfig(dir), (e: unknown) =>
      e instanceof UplinkdError && e.detail.errno === 'EISDIR' && e.message.includes(dir));
    // A FIFO would block a plain open(2) until a writer came: refused at once, naming what was expected.
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    await assert.rejects(loadConfig(fifo), (e: unknown) => e instanceof UplinkdError && e.code === 'config'
      && e.message === `${fifo}: cannot read the configuration: is a FIFO (named pipe), expected a regular file`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config errors escape control characters from the file and quote at most an excerpt of a value', () => {
  // What a binary file (head -c 300 /dev/urandom) or a hostile key brings: ESC sequences, CR, NUL, BS, C1, bidi.
  const junk = '\x1b[2J\r\x00\x08\u009b31m\u202e';
  const text = [
    'uplinks:',
    `  - name: "isp${junk}${'x'.repeat(200)}"`,
    '    interface: wan0',
    `    address: "198.51.100.2/24${junk}${'x'.repeat(200)}"`,
    '    gateway: 198.51.100.1',
    `    "bogus${junk}": 1`,
    '',
  ].join('\n');
  const file = 'dir/with\x1b]0;title\x07/uplinkd.yaml';
  const err = (() => { try { parseConfig(text, file); } catch (e) { return e; } })();
  assert.ok(err instanceof UplinkdError && err.code === 'config');
  assert.doesNotMatch(err.message, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/, JSON.stringify(err.message));
  const lines = err.message.split('\n');
  assert.equal(lines.length, 3, 'one line per problem, the junk adds none');
  assert.ok(lines.every((l) => l.startsWith('dir/with\\x1b]0;title\\x07/uplinkd.yaml:')), err.message);
  assert.match(err.message, /unknown key 'bogus\\x1b\[2J\\r\\x00\\x08\\x9b31m\\u202e'/);
  // The 200-character address is quoted as an excerpt.
  assert.match(err.message, /uplinks\[0\]\.address: '198\.51\.100\.2\/24\\x1b\[2J\\r\\x00\\x08\\x9b31m\\u202ex{33}…' /);
});

test('a file of random bytes is rejected with one plain-text line', () => {
  const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 167 + 13) % 256));
  const err = (() => { try { parseConfig(bytes.toString('utf8'), 'uplinkd.yaml'); } catch (e) { return e; } })();
  assert.ok(err instanceof UplinkdError && err.code === 'config');
  assert.doesNotMatch(err.message, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, JSON.stringify(err.message));
});

test('loadConfigBytes with settleMs waits for a file still being written, and adopts the whole of it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ulcfg-settle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'uplinkd.yaml');
  const first = 'uplinks:\n  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1}\n';
  const rest = '  - {name: isp2, interface: wan1, address: 203.0.113.2/24, gateway: 203.0.113.1}\n';
  writeFileSync(file, first); // a valid prefix: what a reload in mid-write would see
  const loading = loadConfigBytes(file, 100);
  await new Promise((r) => setTimeout(r, 30));
  appendFileSync(file, rest);
  const { config, bytes } = await loading;
  assert.deepEqual(config.uplinks.map((u) => u.name), ['isp1', 'isp2']);
  assert.equal(bytes.toString(), first + rest);
  // A file not modified lately is read once, without waiting.
  const old = new Date(Date.now() - 60_000);
  utimesSync(file, old, old);
  const started = process.hrtime.bigint();
  await loadConfigBytes(file, 60_000);
  assert.ok(process.hrtime.bigint() - started < 30_000_000_000n, 'no 60 s wait for an old file');
});

test('a static gateway that is another uplink\'s address, or (given the kernel\'s addresses) any address of this router, is an error at its line', () => {
  const text = [
    'uplinks:',
    '  - name: isp1',
    '    interface: if1',
    '    address: 198.51.100.2/24',
    '    gateway: 10.0.0.1',
    '  - name: isp2',
    '    interface: if2',
    '    address: 203.0.113.2/24',
    '    gateway: 198.51.100.2',
    '',
  ].join('\n');
  const problems = (facts?: Parameters<typeof parseConfig>[2]) => {
    try {
      parseConfig(text, FILE, facts);
    } catch (e) {
      assert.ok(e instanceof UplinkdError && e.code === 'config');
      return e.message.split('\n');
    }
    return [];
  };
  // Offline: only what the file itself shows.
  assert.deepEqual(problems(), [
    `${FILE}:9:14: uplinks[1].gateway: 198.51.100.2 is the address of uplink 'isp1' (uplinks[0].address, line 4) (expected the address of the provider's router: a route via one of this router's own addresses never leaves it)`,
  ]);
  // With the router's addresses (uplinkd check): the LAN address as isp1's gateway too.
  const local = new Map([['10.0.0.1', 'lan0'], ['198.51.100.2', 'if1'], ['203.0.113.2', 'if2']]);
  assert.deepEqual(problems({ localAddresses: local }), [
    `${FILE}:5:14: uplinks[0].gateway: 10.0.0.1 is an address of this router (on lan0; the kernel refuses a route via it, or keeps its packets here) (expected the address of the provider's router: a route via one of this router's own addresses never leaves it)`,
    `${FILE}:9:14: uplinks[1].gateway: 198.51.100.2 is the address of uplink 'isp1' (uplinks[0].address, line 4) (expected the address of the provider's router: a route via one of this router's own addresses never leaves it)`,
  ]);
  assert.equal(parseConfig(text.replace('gateway: 10.0.0.1', 'gateway: 198.51.100.1').replace('gateway: 198.51.100.2', 'gateway: 203.0.113.1'), FILE,
    { localAddresses: local }).uplinks.length, 2, 'gateways that are not the router\'s are fine');
});
