// Issue 8: a learned on-link gateway outside the uplink's prefix (cloud and hosting style).
// isp2's DHCP server sends only a classless default route (option 121) via 172.31.1.1,
// which is outside 203.0.113.0/24 and answered by the provider on the link; systemd-networkd,
// live in the router namespace, installs `172.31.1.1 dev if2 scope link` and
// `default via 172.31.1.1 dev if2`. The uplink must be ready with that gateway, in the
// default group, and both uplink addresses must answer ping and TCP from the internet host.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDhcpClient, startDhcpServer, stopNetworkd } from '../../lab/dhcp';
import { ipIn, waitFor } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import { alive } from '../../lab/renumber';
import { PROVIDER_CUSTOMER_IF, PROVIDERS, type LabInfo } from '../../lab/topology';
import { startTcpEcho } from '../../lab/traffic';
import type { UplinkStatus } from '../../src/plan/planner';
import { apply, assertAllReachable, down, freshLab, NEEDS_ROOT, reachUplinks } from './support';

const PREFIX = `u8o${process.pid % 1000}-`;
const PORT = 8122;
const ONLINK_GATEWAY = '172.31.1.1';
const ISP2 = PROVIDERS.find((p) => p.name === 'isp2')!;

describe('learned on-link gateway outside the prefix (issue 8)', { skip: NEEDS_ROOT, timeout: 240_000 }, () => {
  let lab: LabInfo;

  /** Restarts isp2's dnsmasq with `start` and networkd on if2 from scratch (old lease, address and routes gone). */
  async function releaseWith(start: () => Promise<void>, gateway: string): Promise<void> {
    const pid = Number((await fs.readFile(path.join(lab.stateDir, 'dnsmasq.isp2.pid'), 'utf8')).trim());
    process.kill(pid, 'SIGTERM');
    await waitFor('dnsmasq to exit', async () => (alive(pid) ? undefined : true), 5_000, 50);
    await fs.rm(path.join(lab.stateDir, 'dnsmasq.isp2.leases'), { force: true });
    await start();
    await stopNetworkd(lab.stateDir);
    await ipIn(lab.ns.router, ['route', 'flush', 'dev', 'if2', 'proto', 'dhcp']);
    await ipIn(lab.ns.router, ['addr', 'flush', 'dev', 'if2']);
    await fs.rm(path.join(lab.stateDir, 'networkd', 'netif', 'leases'), { recursive: true, force: true });
    await startDhcpClient(lab.ns.router, 'networkd', 'if2', lab.stateDir);
    await waitFor(`networkd to install the default via ${gateway}`, async () => {
      const r = await ipIn(lab.ns.router, ['-4', 'route', 'show', 'table', 'main', 'default', 'dev', 'if2']);
      return r.stdout.includes(`via ${gateway}`) ? true : undefined;
    }, 30_000, 200);
  }

  async function isp2Status(): Promise<UplinkStatus> {
    const r = await uplinkd(lab.ns.router, ['status', '-c', lab.configPath, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { uplinks: UplinkStatus[] }).uplinks.find((u) => u.name === 'isp2')!;
  }

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'dhcp', dhcpClient: 'networkd' });
    await startTcpEcho(lab.ns.router, PORT);
    // The provider answers for the on-link gateway and hands it out as option 121 only.
    await ipIn(lab.ns.isp2, ['addr', 'add', `${ONLINK_GATEWAY}/32`, 'dev', PROVIDER_CUSTOMER_IF]);
    await releaseWith(() => startDhcpServer(lab.ns.isp2, ISP2, lab.stateDir, 3600, { gateway: 'classless', via: ONLINK_GATEWAY }), ONLINK_GATEWAY);
  });

  after(async () => {
    if (lab) await down(lab).catch(() => undefined);
    await labDown(PREFIX);
  });

  it('networkd installed the on-link host route and the default through it', async (t) => {
    const main = (await ipIn(lab.ns.router, ['-4', 'route', 'show', 'table', 'main'])).stdout;
    t.diagnostic(main.trim().replace(/\n/g, ' | '));
    assert.match(main, new RegExp(`^${ONLINK_GATEWAY.replace(/\./g, '\\.')} dev if2 proto dhcp scope link`, 'm'));
    assert.match(main, new RegExp(`^default via ${ONLINK_GATEWAY.replace(/\./g, '\\.')} dev if2`, 'm'));
  });

  it('the uplink is ready with the on-link gateway, in the default, and reachable', async () => {
    await apply(lab);
    const isp2 = await isp2Status();
    assert.equal(isp2.state, 'ready', `${isp2.state}: ${isp2.reason}`);
    assert.equal(isp2.gateway, ONLINK_GATEWAY);
    assert.equal(isp2.inDefault, true);
    assertAllReachable(lab, await reachUplinks(lab, PORT));
  });

  it('an address /32 (netmask option 255.255.255.255) with the gateway .1 on the link: ready and reachable', async (t) => {
    // dnsmasq overrides the subnet mask with option 1; networkd then adds `203.0.113.1 dev if2 scope link`.
    await releaseWith(() => startDhcpServer(lab.ns.isp2, ISP2, lab.stateDir, 3600, { netmask: '255.255.255.255' }), ISP2.gateway);
    const addr = (await ipIn(lab.ns.router, ['-4', '-o', 'addr', 'show', 'dev', 'if2'])).stdout;
    t.diagnostic(addr.trim());
    assert.match(addr, /inet 203\.0\.113\.\d+\/32 /);
    await apply(lab);
    const isp2 = await isp2Status();
    assert.equal(isp2.state, 'ready', `${isp2.state}: ${isp2.reason}`);
    assert.equal(isp2.gateway, ISP2.gateway);
    assert.equal(isp2.inDefault, true);
    lab.uplinks.find((u) => u.name === 'isp2')!.address = isp2.address!;
    assertAllReachable(lab, await reachUplinks(lab, PORT));
  });
});
