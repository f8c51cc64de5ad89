// Issue 11: policies and NAT per uplink, with real traffic through the lab.
// The LAN host gets two more addresses (192.168.20.5 in the office network, 192.168.10.20 for the
// VoIP phone) and picks the source per test with its default route's `src`; the lab's own masquerade
// is removed, so every flow reaching the internet host does so through uplinkd's `nat: masquerade`,
// and the address the internet host sees names the uplink it left through.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { globalAddress, startDhcpClient } from '../../lab/dhcp';
import { inNs, ipIn, waitFor, type RunResult } from '../../lab/exec';
import { uplinkd, UPLINKD_BIN } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import { queryDaemon } from '../../src/daemon/control-client';
import { startDaemon, stopDaemon } from '../../lab/daemon';
import { cgroup2Root } from '../../src/nft/exec';
import { dhclient, renumberProvider } from '../../lab/renumber';
import { PROVIDERS, type LabInfo, type Provider } from '../../lab/topology';
import { flowsPerUplink, startTcpEcho, tcpProbe, tcpTally, type TcpServer } from '../../lab/traffic';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `ua1${process.pid % 1000}-`;
const ECHO_PORT = 8085;
const FORWARD_PORT = 8086;
const OFFICE_HOST = '192.168.20.5';
const PHONE = '192.168.10.20';
/** A destination the `bank` policy sends through isp1: a second address of the internet host. */
const BANK = '192.0.2.81';
/** The exec cgroup parent, unique per test run (the cgroup v2 hierarchy is shared with the host). */
const CGROUP = `uplinkd-${PREFIX.slice(0, -1)}`;

/**
 * uplinkd in the router with cgroup v2 mounted where nft looks for it: \`ip netns exec\` gives each command a
 * fresh /sys without the host's cgroup mounts, in a mount namespace of its own (the mount goes with it).
 */
function uplinkdWithCgroups(lab: LabInfo, args: string[]): Promise<RunResult> {
  const quoted = [UPLINKD_BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return inNs(lab.ns.router, 'sh', ['-c', `mount -t cgroup2 none /sys/fs/cgroup && exec ${quoted}`], { allowFail: true, timeoutMs: 60_000 });
}

async function applyCg(lab: LabInfo, config: string): Promise<void> {
  const r = await uplinkdWithCgroups(lab, ['apply', '-c', config]);
  assert.equal(r.code, 0, `uplinkd apply exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
}

/** The issue's policies, with the bank behind BANK (the lab's 203.0.113.0/24 is isp2's own network). */
function policyConfig(lab: LabInfo): string {
  const uplinks = lab.uplinks.map((u) => [
    `  - name: ${u.name}`, `    interface: ${u.interface}`,
    ...(u.mode === 'dhcp' ? ['    dhcp: true'] : [`    address: ${u.address}/${u.prefixlen}`, `    gateway: ${u.gateway}`]),
    '    nat: masquerade',
  ].join('\n'));
  return `uplinks:
${uplinks.join('\n')}
lan: [${lab.lan.interface}]
multipath_hash: l4
paths:
  leases: [${lab.leaseGlobs.map((g) => JSON.stringify(g)).join(', ')}]
exec: {cgroup: ${CGROUP}}
policies:
  - name: office
    from: 192.168.20.0/24
    use: [isp2, isp1]
  - name: voip
    from: ${PHONE}
    protocol: udp
    port: 5060-5080
    use: [isp1]
    strict: true
  - name: bank
    to: ${BANK}/32
    use: [isp1, isp2]
`;
}

/** Flows from the LAN host with source `src` to `target`, per uplink. */
async function flowsFrom(lab: LabInfo, src: string, count: number, target = lab.internetHost): Promise<Record<string, number>> {
  await ipIn(lab.ns.lan, ['route', 'replace', 'default', 'via', lab.lan.routerAddress, 'src', src]);
  const t = await tcpTally(lab.ns.lan, target, ECHO_PORT, { count, concurrency: 10, timeoutMs: 2000 });
  const uplinks = await Promise.all(lab.uplinks.map(async (u) => ({ name: u.name, address: (await globalAddress(lab.ns.router, u.interface)) ?? u.address })));
  return { ...flowsPerUplink(t, uplinks), failed: t.failed };
}

/** UDP to port 5060 counted in each provider (forward chain, before its source filter). */
const SIP_COUNTER = `table ip lab_sip {
  chain forward {
    type filter hook forward priority -10; policy accept;
    udp dport 5060 counter
  }
}
`;

async function sipCount(lab: LabInfo, provider: 'isp1' | 'isp2'): Promise<number> {
  const r = await inNs(lab.ns[provider], 'nft', ['-j', 'list', 'table', 'ip', 'lab_sip']);
  const counter = (JSON.parse(r.stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }).nftables
    .flatMap((i) => i.rule?.expr ?? []).find((e) => e.counter)?.counter;
  return counter?.packets ?? 0;
}

/** Sends `count` UDP datagrams from the phone's address to the internet host's port 5060. */
async function sendSip(lab: LabInfo, count: number): Promise<void> {
  const script = `const s=require('dgram').createSocket('udp4');s.on('error',()=>{});s.bind({address:'${PHONE}'},async()=>{`
    + `for(let i=0;i<${count};i++){await new Promise((r)=>s.send('INVITE',5060,'${lab.internetHost}',()=>r()));}setTimeout(()=>s.close(),200);});`;
  await inNs(lab.ns.lan, process.execPath, ['-e', script], { allowFail: true, timeoutMs: 10_000 });
}

async function setCarrier(lab: LabInfo, provider: 'isp1' | 'isp2', up: boolean): Promise<void> {
  await ipIn(lab.ns[provider], ['link', 'set', 'dev', 'cust', up ? 'up' : 'down']);
}

describe('policies and NAT per uplink (issue 11)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let config: string;
  const servers: TcpServer[] = [];

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'dhcp' });
    // More LAN addresses (the office network and the phone), on the host and the router.
    await ipIn(lab.ns.lan, ['addr', 'add', `${OFFICE_HOST}/24`, 'dev', 'eth0']);
    await ipIn(lab.ns.lan, ['addr', 'add', `${PHONE}/24`, 'dev', 'eth0']);
    await ipIn(lab.ns.router, ['addr', 'add', '192.168.20.1/24', 'dev', lab.lan.interface]);
    await ipIn(lab.ns.inet, ['addr', 'add', `${BANK}/32`, 'dev', 'lo']);
    // Without the lab's masquerade only uplinkd's NAT lets LAN traffic out (providers drop other sources).
    await inNs(lab.ns.router, 'nft', ['delete', 'table', 'ip', 'lab_nat']);
    for (const p of ['isp1', 'isp2'] as const) await inNs(lab.ns[p], 'nft', ['-f', '-'], { input: SIP_COUNTER });
    servers.push(await startTcpEcho(lab.ns.inet, ECHO_PORT));
    config = path.join(lab.stateDir, 'policies.yaml');
    await fs.writeFile(config, policyConfig(lab));
    await applyCg(lab, config);
  });
  after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    await uplinkdWithCgroups(lab, ['down', '-c', config]).catch(() => undefined);
    await labDown(PREFIX);
    // The cgroups are global: never leave ours behind, whatever happened above.
    const root = cgroup2Root();
    if (root) for (const group of [CGROUP, `${CGROUP}-d`]) for (const dir of ['isp1', 'isp2', '']) await fs.rmdir(path.join(root, group, dir)).catch(() => undefined);
  });

  it('uplinkd exec isp2 -- a client without interface options: its flows reach the internet host via isp2', async () => {
    const tally = path.join(__dirname, '..', '..', 'lab', 'tcp-tally.js');
    const client = [process.execPath, tally, '--target', lab.internetHost, '--port', String(ECHO_PORT), '--count', '20', '--concurrency', '5'];
    const seen = async (r: RunResult): Promise<Record<string, number>> => {
      assert.equal(r.code, 0, r.stderr);
      const t = JSON.parse(r.stdout) as { seen: Record<string, number>; failed: number };
      const uplinks = await Promise.all(lab.uplinks.map(async (u) => ({ name: u.name, address: (await globalAddress(lab.ns.router, u.interface)) ?? u.address })));
      return { ...flowsPerUplink({ ...t, errors: {} }, uplinks), failed: t.failed };
    };
    // The control: the router's own flows are balanced over both uplinks.
    const plain = await seen(await inNs(lab.ns.router, client[0]!, client.slice(1), { allowFail: true }));
    assert.ok(plain.isp1! > 0 && plain.isp2! > 0, `balanced without exec: ${JSON.stringify(plain)}`);
    for (const uplink of ['isp2', 'isp1']) {
      const via = await seen(await uplinkdWithCgroups(lab, ['exec', '-c', config, uplink, '--', ...client]));
      assert.deepEqual(via, { isp1: uplink === 'isp1' ? 20 : 0, isp2: uplink === 'isp2' ? 20 : 0, failed: 0 }, `exec ${uplink}`);
    }
  });

  it('a second apply changes nothing: the kernel echoes the policy rules (ipproto, port ranges) as uplinkd wrote them', async () => {
    const r = await uplinkdWithCgroups(lab, ['apply', '-c', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^0 changes applied$/m, r.stdout);
  });

  it('plan shows each policy with its rules and the uplink it uses', async () => {
    const r = await uplinkd(lab.ns.router, ['plan', '-c', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /policy office: isp2 \(isp2 is usable, first in use\)/);
    assert.match(r.stdout, /from 192\.168\.10\.20\/32 ipproto udp dport 5060-5080 unreachable priority 10214/);
    const s = await uplinkd(lab.ns.router, ['status', '-c', config, '--json']);
    const status = JSON.parse(s.stdout) as { policies: { name: string; uplink?: string; action: string }[] };
    assert.deepEqual(status.policies.map((p) => [p.name, p.action, p.uplink]), [['office', 'uplink', 'isp2'], ['voip', 'uplink', 'isp1'], ['bank', 'uplink', 'isp1']]);
  });

  it('20 flows from 192.168.20.x all leave via isp2; via isp1 while isp2 has no carrier; back when it returns', async () => {
    assert.deepEqual(await flowsFrom(lab, OFFICE_HOST, 20), { isp1: 0, isp2: 20, failed: 0 });
    await setCarrier(lab, 'isp2', false);
    try {
      await applyCg(lab, config);
      assert.deepEqual(await flowsFrom(lab, OFFICE_HOST, 20), { isp1: 20, isp2: 0, failed: 0 });
    } finally {
      await setCarrier(lab, 'isp2', true);
    }
    await applyCg(lab, config);
    assert.deepEqual(await flowsFrom(lab, OFFICE_HOST, 20), { isp1: 0, isp2: 20, failed: 0 });
  });

  it('other traffic of the LAN is balanced over both uplinks, each with its own address as source (nat: masquerade)', async () => {
    const flows = await flowsFrom(lab, PHONE, 40);
    assert.equal(flows.failed, 0);
    assert.ok(flows.isp1! > 0 && flows.isp2! > 0, JSON.stringify(flows));
    assert.equal(flows.isp1! + flows.isp2!, 40, JSON.stringify(flows));
  });

  it('traffic to the bank leaves via isp1 while it is usable', async () => {
    assert.deepEqual(await flowsFrom(lab, lab.lan.hostAddress, 20, BANK), { isp1: 20, isp2: 0, failed: 0 });
  });

  it('UDP 5060 from the phone leaves via isp1 only; with isp1 unusable not one packet leaves via isp2', async () => {
    const [one, two] = [await sipCount(lab, 'isp1'), await sipCount(lab, 'isp2')];
    await sendSip(lab, 30);
    assert.equal(await sipCount(lab, 'isp1') - one, 30);
    assert.equal(await sipCount(lab, 'isp2') - two, 0);
    await setCarrier(lab, 'isp1', false);
    try {
      // Before uplinkd reacts (isp1's table still chosen, its link dead) and after: nothing via isp2.
      await sendSip(lab, 30);
      await applyCg(lab, config);
      const rules = (await ipIn(lab.ns.router, ['rule', 'show', 'priority', '10214'])).stdout;
      assert.match(rules, /ipproto udp dport 5060-5080 unreachable/);
      await sendSip(lab, 30);
      assert.equal(await sipCount(lab, 'isp2') - two, 0, 'SIP leaked through isp2');
      // The phone's other traffic still gets out, through isp2.
      assert.deepEqual(await flowsFrom(lab, PHONE, 10), { isp1: 0, isp2: 10, failed: 0 });
    } finally {
      await setCarrier(lab, 'isp1', true);
    }
    await applyCg(lab, config);
  });

  it('a port-forward on isp1 to an office host still answers through isp1 (office traffic otherwise uses isp2)', async () => {
    await ipIn(lab.ns.lan, ['route', 'replace', 'default', 'via', lab.lan.routerAddress, 'src', OFFICE_HOST]);
    servers.push(await startTcpEcho(lab.ns.lan, ECHO_PORT));
    await inNs(lab.ns.router, 'nft', ['-f', '-'], {
      input: `table ip lab_pf {\n  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n`
        + `    iifname "${lab.uplinks[0]!.interface}" tcp dport ${FORWARD_PORT} dnat to ${OFFICE_HOST}:${ECHO_PORT}\n  }\n}\n`,
    });
    const isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    // The echo answers with the peer it saw: the internet host, reached back through isp1 (isp2 would drop the reply's source).
    for (let i = 0; i < 5; i++) assert.equal(await tcpProbe(lab.ns.inet, isp1.address, FORWARD_PORT), lab.internetHost);
    // The issue's mistake, for contrast: the admin's own rule at 9000 sends the replies out through isp2
    // (whose provider drops them), and uplinkd says so.
    // isp2's table number derives from its name (src/config/identity.ts): ask uplinkd for it.
    const st = JSON.parse((await uplinkd(lab.ns.router, ['status', '--json', '-c', config])).stdout) as { uplinks: { name: string; table: number }[] };
    const isp2Table = String(st.uplinks.find((u) => u.name === 'isp2')!.table);
    await ipIn(lab.ns.router, ['rule', 'add', 'priority', '9000', 'from', '192.168.20.0/24', 'lookup', isp2Table]);
    try {
      assert.equal(await tcpProbe(lab.ns.inet, isp1.address, FORWARD_PORT, 1500), undefined, 'replies should be lost through isp2');
      const plan = await uplinkd(lab.ns.router, ['plan', '-c', config]);
      assert.match(plan.stdout + plan.stderr, new RegExp(`admin rule 'from 192\\.168\\.20\\.0/24 lookup ${isp2Table} priority 9000[^']*': comes before flow pinning and split access, so port-forward replies`));
    } finally {
      await ipIn(lab.ns.router, ['rule', 'del', 'priority', '9000']);
    }
    assert.equal(await tcpProbe(lab.ns.inet, isp1.address, FORWARD_PORT), lab.internetHost);
  });

  it('masquerade follows a DHCP renumbering of isp2 without a change to the nftables table', async () => {
    const isp2 = lab.uplinks.find((u) => u.name === 'isp2')!;
    const old = (await globalAddress(lab.ns.router, isp2.interface))!;
    await dhclient(lab, isp2.interface, ['-r']);
    const provider: Provider = { ...PROVIDERS[1]! };
    await renumberProvider(lab, provider, { gateway: '203.0.113.254', range: ['203.0.113.200', '203.0.113.210'] });
    const fresh = await startDhcpClient(lab.ns.router, 'dhclient', isp2.interface, lab.stateDir);
    assert.notEqual(fresh, old);
    const r = await uplinkdWithCgroups(lab, ['apply', '-c', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /nft/, 'the NAT table needs no change for a new address');
    const flows = await waitFor('office flows via the renumbered isp2', async () => {
      const f = await flowsFrom(lab, OFFICE_HOST, 10);
      return f.isp2 === 10 ? f : undefined;
    }, 10_000, 500);
    assert.deepEqual(flows, { isp1: 0, isp2: 10, failed: 0 });
    const balanced = await flowsFrom(lab, PHONE, 40);
    assert.ok(balanced.isp1! > 0 && balanced.isp2! > 0 && balanced.failed === 0, JSON.stringify(balanced));
  });

  it('the daemon moves the office policy to isp1 when isp2 loses its carrier, and back when it returns', async () => {
    const socket = path.join(lab.stateDir, 'policies.sock');
    const daemonFile = path.join(lab.stateDir, 'policies-daemon.yaml');
    await fs.writeFile(daemonFile, policyConfig(lab).replace(/^exec: .*\n/m,
      `  control_socket: ${JSON.stringify(socket)}\ndaemon:\n  debounce: 5ms\n  resync_interval: 5s\n`));
    const daemon = await startDaemon(lab.ns.router, daemonFile);
    const officeTable = async (): Promise<string> => (await ipIn(lab.ns.router, ['rule', 'show', 'priority', '10210'])).stdout;
    try {
      await waitFor('office on isp2', async () => (/lookup (1002|isp2)\b/.test(await officeTable()) ? true : undefined), 10_000);
      assert.deepEqual(await flowsFrom(lab, OFFICE_HOST, 20), { isp1: 0, isp2: 20, failed: 0 });
      await setCarrier(lab, 'isp2', false);
      try {
        await waitFor('office on isp1', async () => (/lookup (1001|isp1)\b/.test(await officeTable()) ? true : undefined), 10_000);
        assert.deepEqual(await flowsFrom(lab, OFFICE_HOST, 20), { isp1: 20, isp2: 0, failed: 0 });
        const status = await queryDaemon(socket, { cmd: 'status' }) as { policies: { name: string; uplink?: string; reason: string }[] };
        assert.deepEqual(status.policies.map((p) => [p.name, p.uplink]), [['office', 'isp1'], ['voip', 'isp1'], ['bank', 'isp1']]);
        assert.match(status.policies[0]!.reason, /next in use \(isp2: no carrier\)/);
      } finally {
        await setCarrier(lab, 'isp2', true);
      }
      await waitFor('office back on isp2', async () => (/lookup (1002|isp2)\b/.test(await officeTable()) ? true : undefined), 10_000);
      assert.deepEqual(await flowsFrom(lab, OFFICE_HOST, 20), { isp1: 0, isp2: 20, failed: 0 });
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
    }
  });

  // Last: --cleanup removes everything uplinkd made here.
  it('a daemon run with --cleanup and exec: creates the exec cgroups, and removes them with the rest when stopped, as down does', async () => {
    const root = cgroup2Root();
    if (!root) return; // without cgroup v2 on this machine there are no cgroups to look at (exec warns, tested above)
    const group = `${CGROUP}-d`;
    const daemonFile = path.join(lab.stateDir, 'policies-cleanup.yaml');
    await fs.writeFile(daemonFile, policyConfig(lab).replace(/^exec: .*$/m, `  control_socket: ${JSON.stringify(path.join(lab.stateDir, 'cleanup.sock'))}\nexec: {cgroup: ${group}}`));
    const dirs = ['isp1', 'isp2'].map((u) => path.join(root, group, u));
    const exists = (d: string) => fs.access(d).then(() => true, () => false);
    const daemon = await startDaemon(lab.ns.router, daemonFile, undefined, 'info', { runArgs: ['--cleanup'], cgroup2: true });
    try {
      await waitFor('the exec cgroups', async () => ((await Promise.all(dirs.map(exists))).every(Boolean) ? true : undefined), 10_000);
    } finally {
      await stopDaemon(daemon, 'SIGTERM');
    }
    assert.ok(daemon.lines.some((l) => /event=stop cleanup=true/.test(l)), daemon.lines.join('\n'));
    for (const d of [...dirs, path.join(root, group)]) assert.equal(await exists(d), false, `${d} left behind by run --cleanup:\n${daemon.lines.join('\n')}`);
  });
});
