// Issue 9 scenario 1, run INSIDE the full-kernel guest (test/lab/guest.test.ts boots it): the
// blog's world, one NIC carrying the LAN untagged and VLANs 101/102 to two providers, both uplinks
// `dhcp: true` with dhclient. Split access, balancing by weight, and a renumbering on VLAN 102
// followed by `uplinkd run`, all with real traffic.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { blogUp } from '../../lab/blog';
import { daemonConfig, startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { startDhcpClient } from '../../lab/dhcp';
import { ipJson, waitFor } from '../../lab/exec';
import { routesOfTable, rules } from '../../lab/inspect';
import { labDown, vlanDriverMissing } from '../../lab/lab';
import { dhclient, renumberProvider } from '../../lab/renumber';
import { PROVIDERS, type LabInfo } from '../../lab/topology';
import { flowsPerUplink, ping, startTcpEcho, tcpProbe, tcpTally } from '../../lab/traffic';
import { apply, assertAllReachable, binomialTolerance, down, NEEDS_ROOT, reachUplinks } from '../lab/support';

const PREFIX = `ug${process.pid % 1000}b-`;
const PORT = 8091;
const FLOWS = 200;

describe('the blog world: one NIC, LAN untagged, VLANs 101/102 with DHCP (issue 9)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let daemon: RunningDaemon | undefined;

  before(async () => {
    const missing = await vlanDriverMissing(PREFIX);
    if (missing) throw new Error(`${missing} (this file runs in the full-kernel guest: test/lab/guest.test.ts)`);
    await labDown(PREFIX);
    lab = await blogUp(PREFIX);
    await startTcpEcho(lab.ns.router, PORT);
    await startTcpEcho(lab.ns.inet, PORT + 1);
  });
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('the router has one NIC: LAN untagged on eth0, both uplinks VLANs of it leased by dhclient', async () => {
    assert.equal(lab.lan.interface, 'eth0');
    for (const [i, u] of lab.uplinks.entries()) {
      const p = PROVIDERS[i];
      assert.equal(u.interface, `vlan${p.vlanId}`);
      assert.equal(u.mode, 'dhcp');
      const last = Number(u.address.split('.')[3]);
      assert.ok(u.address.startsWith(p.customerNet.split('.').slice(0, 3).join('.') + '.') && last >= 100 && last <= 150, `${u.name} leased ${u.address}`);
      const [link] = await ipJson<{ link?: string; linkinfo?: { info_kind: string; info_data?: { id: number } } }>(lab.ns.router, ['-d', 'link', 'show', 'dev', u.interface]);
      assert.equal(link.link, 'eth0');
      assert.equal(link.linkinfo?.info_kind, 'vlan');
      assert.equal(link.linkinfo?.info_data?.id, p.vlanId);
    }
    assert.equal(await ping(lab.ns.lan, lab.lan.routerAddress), true, 'the LAN host reaches the router over untagged eth0');
  });

  it('without uplinkd, a strict provider drops the replies of at least one uplink address', async () => {
    const reach = await reachUplinks(lab, PORT);
    assert.ok(reach.some((r) => !r.ping && r.tcpPeer === undefined), JSON.stringify(reach));
  });

  it('with uplinkd apply, ping and TCP reach both leased addresses; each has its rule and gateway', async () => {
    await apply(lab);
    assertAllReachable(lab, await reachUplinks(lab, PORT));
    const rs = await rules(lab.ns.router);
    for (const [i, u] of lab.uplinks.entries()) {
      const table = 1001 + i;
      assert.ok(rs.some((r) => r.src === u.address && String(r.table) === String(table)), `no rule from ${u.address} lookup ${table}: ${JSON.stringify(rs)}`);
      const def = (await routesOfTable(lab.ns.router, table)).find((r) => r.dst === 'default');
      assert.equal(def?.gateway, u.gateway);
      assert.equal(def?.dev, u.interface);
    }
  });

  it(`LAN flows are balanced by weight (1:3) over both VLAN uplinks`, async (t) => {
    const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT + 1, { count: FLOWS, concurrency: 10, timeoutMs: 6000 });
    assert.equal(tally.failed, 0, JSON.stringify(tally.errors));
    const per = flowsPerUplink(tally, lab.uplinks);
    t.diagnostic(`flows per uplink: ${JSON.stringify(per)}`);
    assert.equal(per.isp1 + per.isp2, FLOWS, JSON.stringify(tally.seen));
    assert.ok(Math.abs(per.isp1 - FLOWS / 4) <= binomialTolerance(FLOWS, 0.25), JSON.stringify(per));
  });

  it('VLAN 102 is renumbered (new range and gateway); uplinkd run follows the new lease', async () => {
    await down(lab);
    const socket = path.join(lab.stateDir, 'control.sock');
    const config = path.join(lab.stateDir, 'daemon.yaml');
    await fs.writeFile(config, daemonConfig(lab, socket));
    daemon = await startDaemon(lab.ns.router, config);
    const isp2 = lab.uplinks[1];
    await waitForRule(lab, isp2.address, 1002);

    await dhclient(lab, isp2.interface, ['-r']); // release, stop the client
    const next = await renumberProvider(lab, PROVIDERS[1], { gateway: '203.0.113.254', range: ['203.0.113.200', '203.0.113.210'] });
    const fresh = await startDhcpClient(lab.ns.router, 'dhclient', isp2.interface, lab.stateDir);
    assert.notEqual(fresh, isp2.address);
    await waitForRule(lab, fresh, 1002);
    await waitFor('table 1002 default via the new gateway', async () => {
      const def = (await routesOfTable(lab.ns.router, 1002)).find((r) => r.dst === 'default');
      return def?.gateway === next.gateway && def.dev === isp2.interface ? true : undefined;
    }, 20_000, 100);
    await waitFor('the stale rule to go', async () => ((await rules(lab.ns.router)).some((r) => r.src === isp2.address) ? undefined : true), 20_000, 100);
    assert.equal(await tcpProbe(lab.ns.inet, fresh, PORT, 5000), lab.internetHost, `TCP to the renumbered ${fresh}`);
  });
});

async function waitForRule(lab: LabInfo, src: string, table: number): Promise<void> {
  await waitFor(`rule from ${src} lookup ${table}`, async () => ((await rules(lab.ns.router)).some((r) => r.src === src && String(r.table) === String(table)) ? true : undefined), 30_000, 100);
}
