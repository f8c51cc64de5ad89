// The lab itself, without uplinkd: topology, strict providers, NAT, DHCP clients, cleanup.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { readLeases } from '../../src/facts/leases';
import { ipIn, run } from '../../lab/exec';
import { labDown, labUp, listNamespaces, readLabInfo } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { flowsPerUplink, ping, startTcpEcho, tcpProbe, tcpTally } from '../../lab/traffic';
import { freshLab, NEEDS_ROOT, withLab } from './support';

const PREFIX = `ult0${process.pid % 1000}-`;

/** True once no process has this pid (it may take a moment to be reaped). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
const PORT = 8080;

describe('lab (no uplinkd)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    await startTcpEcho(lab.ns.router, PORT);
    await startTcpEcho(lab.ns.inet, PORT);
  });
  after(async () => {
    await labDown(PREFIX);
  });

  it('builds the namespaces, gives the DHCP uplink a lease and writes its info', async () => {
    const names = await listNamespaces();
    for (const ns of Object.values(lab.ns)) assert.ok(names.includes(ns), `namespace ${ns} missing`);
    const isp2 = lab.uplinks.find((u) => u.name === 'isp2');
    assert.equal(isp2?.mode, 'dhcp');
    const last = Number(isp2.address.split('.')[3]);
    assert.ok(isp2.address.startsWith('203.0.113.') && last >= 100 && last <= 150, `leased ${isp2.address}`);
    assert.deepEqual(await readLabInfo(PREFIX), lab);
    assert.ok(existsSync(lab.configPath));
    assert.ok(existsSync(`/etc/netns/${lab.ns.router}/iproute2/rt_tables.d`));
  });

  it('the lease file is readable by src/facts and matches the kernel', async () => {
    const leases = await readLeases(lab.leaseGlobs);
    const isp2 = lab.uplinks.find((u) => u.name === 'isp2');
    const lease = leases.find((l) => l.interface === isp2?.interface);
    assert.ok(lease, `no lease for ${isp2?.interface} in ${JSON.stringify(leases)}`);
    assert.equal(lease.address, isp2?.address);
    assert.equal(lease.gateway, isp2?.gateway);
  });

  it('LAN flows reach the internet host masqueraded as an uplink address', async () => {
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT, { count: 20 });
    assert.equal(tally.failed, 0, JSON.stringify(tally.errors));
    const per = flowsPerUplink(tally, lab.uplinks);
    assert.equal(per.isp1 + per.isp2, 20, `flows seen from unknown sources: ${JSON.stringify(tally.seen)}`);
  });

  it('strict providers drop replies sent through the wrong provider; a policy rule fixes that', async () => {
    // main's default is isp2 (dhclient's metric 0 beats the static metric 100), so isp1's address is unreachable.
    const isp1 = lab.uplinks.find((u) => u.name === 'isp1');
    assert.ok(isp1);
    assert.equal(await ping(lab.ns.inet, isp1.address), false, 'reply left through isp2 and was not dropped');
    assert.equal(await tcpProbe(lab.ns.inet, isp1.address, PORT, 1000), undefined);
    await ipIn(lab.ns.router, ['route', 'add', 'default', 'via', isp1.gateway, 'dev', isp1.interface, 'table', '77']);
    await ipIn(lab.ns.router, ['rule', 'add', 'from', isp1.address, 'lookup', '77', 'priority', '777']);
    try {
      assert.equal(await ping(lab.ns.inet, isp1.address), true);
      assert.equal(await tcpProbe(lab.ns.inet, isp1.address, PORT), lab.internetHost);
    } finally {
      await ipIn(lab.ns.router, ['rule', 'del', 'priority', '777']);
      await ipIn(lab.ns.router, ['route', 'flush', 'table', '77']);
    }
  });

  it('refuses to build over an existing lab', async () => {
    await assert.rejects(labUp({ prefix: PREFIX }), /already up/);
  });
});

describe('lab DHCP clients', { skip: NEEDS_ROOT }, () => {
  for (const client of ['dhcpcd', 'udhcpc'] as const) {
    it(`${client} leases both uplinks and writes lease files src/facts reads`, async () => {
      await withLab({ prefix: `ult0c${process.pid % 1000}-`, dhcpClient: client, isp1: 'dhcp', isp2: 'dhcp' }, async (lab) => {
        const leases = await readLeases(lab.leaseGlobs);
        for (const u of lab.uplinks) {
          assert.equal(u.mode, 'dhcp');
          assert.ok(u.address.startsWith(u.network.split('.').slice(0, 3).join('.') + '.'), `${u.name} got ${u.address}`);
          const lease = leases.find((l) => l.interface === u.interface);
          assert.equal(lease?.address, u.address, `lease of ${u.interface}: ${JSON.stringify(leases)}`);
          assert.equal(lease?.gateway, u.gateway);
        }
      });
    });
  }
});

describe('lab down', { skip: NEEDS_ROOT }, () => {
  it('cleans up a half-built lab and can run again', async () => {
    const prefix = 'ult0d-';
    await labDown(prefix);
    // A crash half-way: some namespaces, a process inside, an /etc/netns dir, a state dir.
    await run('ip', ['netns', 'add', `${prefix}router`]);
    await run('ip', ['netns', 'add', `${prefix}isp1`]);
    const lab = await labUp({ prefix }).catch((e: Error) => e);
    assert.ok(lab instanceof Error && /already up/.test(lab.message));
    const server = await startTcpEcho(`${prefix}router`, PORT);
    const report = await labDown(prefix);
    assert.deepEqual([...report.namespaces].sort(), [`${prefix}isp1`, `${prefix}router`]);
    assert.ok(report.killed.includes(server.pid), `server ${server.pid} not among killed ${report.killed}`);
    assert.equal(await gone(server.pid), true, `server ${server.pid} still runs`);
    const names = await listNamespaces();
    assert.ok(!names.some((n) => n.startsWith(prefix)), names.join(' '));
    assert.ok(!existsSync(`/etc/netns/${prefix}router`));
    assert.deepEqual(await labDown(prefix), { namespaces: [], killed: [] });
  });
});
