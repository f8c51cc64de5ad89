// Issue 8: providers that send the default route only as a classless static route (DHCP
// option 121, RFC 3442; no router option 3). With dhclient on both uplinks the second
// uplink's metric-0 default route cannot be installed (the first one's exists), so its
// gateway must come from the lease's classless routes; with systemd-networkd (run live in
// the router namespace) both uplinks get routes. Either way both uplinks must be ready with
// the provider's gateway and answer ping and TCP from the internet host.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { ipIn, ipJson } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { ping, startTcpEcho } from '../../lab/traffic';
import type { UplinkStatus } from '../../src/plan/planner';
import { apply, assertAllReachable, down, freshLab, NEEDS_ROOT, reachUplinks } from './support';

const PREFIX = `u8n${process.pid % 1000}-`;
const PORT = 8121;

async function statusOf(lab: LabInfo): Promise<UplinkStatus[]> {
  const r = await uplinkd(lab.ns.router, ['status', '-c', lab.configPath, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { uplinks: UplinkStatus[] }).uplinks;
}

async function defaultsInMain(lab: LabInfo): Promise<string[]> {
  const r = await ipIn(lab.ns.router, ['-4', 'route', 'show', 'table', 'main', 'default']);
  return r.stdout.trim().split('\n').filter(Boolean);
}

/** Both uplinks ready with their provider's gateway, and reachable from the internet host. */
async function assertBothReady(lab: LabInfo): Promise<UplinkStatus[]> {
  const status = await statusOf(lab);
  for (const u of lab.uplinks) {
    const s = status.find((x) => x.name === u.name);
    assert.ok(s, `no status for ${u.name}`);
    assert.equal(s.state, 'ready', `${u.name}: ${s.state} (${s.reason})`);
    assert.equal(s.gateway, u.gateway, `${u.name} gateway`);
  }
  assertAllReachable(lab, await reachUplinks(lab, PORT));
  return status;
}

describe('option 121 only (issue 8)', { skip: NEEDS_ROOT, timeout: 300_000 }, () => {
  let lab: LabInfo | undefined;
  afterEach(async () => {
    if (lab) await down(lab).catch(() => undefined);
    await labDown(PREFIX);
    lab = undefined;
  });
  after(() => labDown(PREFIX));

  it('dhclient on two uplinks: the second default route fails to install, the gateway comes from the lease', async (t) => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'dhcp', isp2: 'dhcp', dhcpGateway: 'classless' });
    await startTcpEcho(lab.ns.router, PORT);
    for (const u of lab.uplinks) {
      const text = readFileSync(u.leaseFile!, 'utf8');
      assert.match(text, new RegExp(`option rfc3442-classless-static-routes 0,${u.gateway.split('.').join(',')};`));
      assert.doesNotMatch(text, /option routers/);
    }
    const defaults = await defaultsInMain(lab);
    t.diagnostic(`defaults in main: ${defaults.join(' | ')}`);
    assert.equal(defaults.length, 1, 'dhclient-script installs only the first metric-0 default route');
    assert.ok((await apply(lab)) > 0);
    const status = await assertBothReady(lab);
    const fromLease = status.filter((s) => s.gatewaySource === 'lease').map((s) => s.name);
    assert.equal(fromLease.length, 1, `exactly one gateway from a lease: ${JSON.stringify(status)}`);
  });

  it('a classless route to a second router of isp2 (dhclient): in isp2\'s table only, so replies from isp2\'s address take it', async () => {
    lab = await freshLab({ prefix: PREFIX, classlessRoute: { provider: 'isp2', dst: '10.50.0.0/16', viaHost: 5 } });
    const isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    const isp2 = lab.uplinks.find((u) => u.name === 'isp2')!;
    const via = isp2.gateway.replace(/\.\d+$/, '.5');
    assert.match(readFileSync(isp2.leaseFile!, 'utf8'), /option rfc3442-classless-static-routes 16,10,50,/);
    const inMain = (await ipIn(lab.ns.router, ['-4', 'route', 'show', 'table', 'main', '10.50.0.0/16'])).stdout;
    assert.match(inMain, new RegExp(`via ${via.replace(/\./g, '\\.')} dev ${isp2.interface}`), 'dhclient installed it in main');
    await ipIn(isp2.providerNs, ['addr', 'add', '10.50.0.1/32', 'dev', 'lo']);
    assert.ok((await apply(lab)) > 0);
    const gatewayFrom = async (source: string) =>
      (await ipJson<{ gateway?: string; dev: string }>(lab!.ns.router, ['route', 'get', '10.50.0.1', 'from', source]))[0];
    assert.deepEqual(await gatewayFrom(isp2.address), { ...(await gatewayFrom(isp2.address)), gateway: via, dev: isp2.interface },
      'from isp2\'s address: the provider\'s second router');
    assert.equal((await gatewayFrom(isp1.address))?.gateway, isp1.gateway, 'from isp1\'s address: isp1\'s own default, not through if2');
    assert.equal(await ping(lab.ns.router, '10.50.0.1', { source: isp2.address }), true);
  });

  it('systemd-networkd (live in the namespace) on two uplinks: both ready with the classless default', async (t) => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'dhcp', isp2: 'dhcp', dhcpClient: 'networkd', dhcpGateway: 'classless' });
    await startTcpEcho(lab.ns.router, PORT);
    for (const u of lab.uplinks) {
      const text = readFileSync(u.leaseFile!, 'utf8');
      assert.match(text, new RegExp(`^CLASSLESS_ROUTES=0\\.0\\.0\\.0/0,${u.gateway.replace(/\./g, '\\.')}$`, 'm'));
      assert.doesNotMatch(text, /^ROUTER=/m);
    }
    t.diagnostic(`defaults in main: ${(await defaultsInMain(lab)).join(' | ')}`);
    assert.ok((await apply(lab)) > 0);
    await assertBothReady(lab);
  });
});
