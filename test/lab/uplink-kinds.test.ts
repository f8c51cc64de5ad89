// Issue 8 acceptance with real traffic: the kinds of uplink beyond "Ethernet with a gateway in its
// prefix". Each case builds a small lab (lab/kinds.ts) whose providers drop foreign sources:
//   - two point-to-point uplinks with the SAME peer address (a veth with peer addresses, NOARP,
//     and pppd's device-only default model PPP), learned from the system;
//   - a static /32 with an on-link gateway outside its prefix, and a learned one (the DHCP
//     client's `G dev IF scope link` + `default via G dev IF` installed by hand), both gateways 172.31.1.1;
//   - two static uplinks in 192.168.1.0/24, both with gateway .1.
// In each: ping and TCP from the internet host reach both uplink addresses, and LAN flows use both.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ipIn, ipJson } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { kindsLabDown, kindsLabUp, writeKindsConfig, type KindsLab, type KindUplink } from '../../lab/kinds';
import { flowsPerUplink, ping, startTcpEcho, tcpProbe, tcpTally } from '../../lab/traffic';
import { NEEDS_ROOT } from './support';

const PORT = 8088;
const base = `u8a${process.pid % 1000}-`;

async function apply(lab: KindsLab, config: string): Promise<string> {
  const r = await uplinkd(lab.ns.router, ['apply', '-c', config]);
  assert.equal(r.code, 0, `uplinkd apply exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  const status = await uplinkd(lab.ns.router, ['status', '-c', config]);
  return status.stdout;
}

/** Ping and a TCP connection from the internet host to every uplink address (the router runs the server). */
async function assertReachable(lab: KindsLab): Promise<void> {
  for (const u of lab.uplinks) {
    assert.equal(await ping(lab.ns.inet, u.address, { count: 2, waitSec: 1 }), true, `ping ${u.address} (${u.name}) from the internet host failed`);
    assert.equal(await tcpProbe(lab.ns.inet, u.address, PORT, 1500), lab.internetHost, `TCP to ${u.address} (${u.name}) failed`);
  }
}

/** 60 LAN flows to the internet host: per uplink, by the source address the server saw. */
async function lanFlows(lab: KindsLab): Promise<Record<string, number>> {
  const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT, { count: 60, concurrency: 8 });
  assert.equal(tally.failed, 0, `LAN flows failed: ${JSON.stringify(tally.errors)}`);
  return flowsPerUplink(tally, lab.uplinks);
}

async function withKindsLab(tag: string, uplinks: KindUplink[], fn: (lab: KindsLab) => Promise<void>): Promise<void> {
  const prefix = `${base}${tag}`;
  try {
    const lab = await kindsLabUp(prefix, uplinks);
    await startTcpEcho(lab.ns.router, PORT);
    await startTcpEcho(lab.ns.inet, PORT);
    await fn(lab);
  } finally {
    await kindsLabDown(prefix);
  }
}

describe('uplink kinds with real traffic (issue 8)', { skip: NEEDS_ROOT }, () => {
  after(async () => {
    for (const tag of ['a', 'b', 'c']) await kindsLabDown(`${base}${tag}`);
  });

  it('two point-to-point uplinks with the same peer: both reachable, LAN flows on both, one down -> all on the other', async (t) => {
    const p2p = (n: number): KindUplink => ({
      name: `flets${n}`,
      routerIf: `ppp${n}`,
      address: `100.64.${6 + n}.2`,
      pointToPoint: true,
      // As pppd leaves it: `inet A peer P/32`; only the first session got its `default dev pppN`.
      router: [`addr add 100.64.${6 + n}.2 peer 10.64.0.1/32 dev ppp${n}`, ...(n === 1 ? ['route add default dev ppp1 metric 100'] : [])],
      provider: [`addr add 10.64.0.1 peer 100.64.${6 + n}.2/32 dev cust`],
    });
    await withKindsLab('a', [p2p(1), p2p(2)], async (lab) => {
      const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: flets1, interface: ppp1, learn: true}
  - {name: flets2, interface: ppp2, dhcp: true}
`);
      const status = await apply(lab, config);
      t.diagnostic(status);
      assert.match(status, /^flets1 +ppp1 +100\.64\.7\.2\/32 +dev ppp1 \(route\) .* ready +yes/m);
      assert.match(status, /^flets2 +ppp2 +100\.64\.8\.2\/32 +dev ppp2 \(link\) .* ready +yes/m);
      await assertReachable(lab);
      const both = await lanFlows(lab);
      t.diagnostic(`LAN flows: ${JSON.stringify(both)}`);
      assert.ok(both.flets1! > 5 && both.flets2! > 5, `LAN flows not balanced over both: ${JSON.stringify(both)}`);

      await ipIn(lab.ns.router, ['link', 'set', 'ppp1', 'down']);
      await apply(lab, config);
      assert.deepEqual(await lanFlows(lab), { flets1: 0, flets2: 60 });
      assert.equal(await tcpProbe(lab.ns.inet, '100.64.8.2', PORT, 1500), lab.internetHost, 'flets2 unreachable with flets1 down');
    });
  });

  it('on-link gateways outside the prefix: a static /32 and a learned one, both reachable and in the default group', async (t) => {
    const cloud = (n: number, address: string, router: string[]): KindUplink => ({
      name: `cloud${n}`, routerIf: `ens${n}`, address, router,
      provider: ['addr add 172.31.1.1/32 dev cust', `route add ${address}/32 dev cust`],
    });
    await withKindsLab('b', [
      cloud(1, '203.0.113.2', ['addr add 203.0.113.2/32 dev ens1']),
      // What a DHCP client installs for a /32 lease with an on-link router (systemd-networkd, dhclient with 121).
      cloud(2, '198.51.100.9', ['addr add 198.51.100.9/32 dev ens2', 'route add 172.31.1.1/32 dev ens2 scope link', 'route add default via 172.31.1.1 dev ens2 metric 100']),
    ], async (lab) => {
      const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: cloud1, interface: ens1, address: 203.0.113.2/32, gateway: 172.31.1.1}
  - {name: cloud2, interface: ens2, learn: true}
`);
      const status = await apply(lab, config);
      t.diagnostic(status);
      assert.match(status, /^cloud1 +ens1 +203\.0\.113\.2\/32 +172\.31\.1\.1 onlink .* ready +yes/m);
      assert.match(status, /^cloud2 +ens2 +198\.51\.100\.9\/32 +172\.31\.1\.1 onlink \(route\) .* ready +yes/m);
      const group = await ipJson<{ id: number; group?: { id: number }[] }>(lab.ns.router, ['nexthop', 'show', 'id', '1000']);
      assert.equal(group[0]?.group?.length, 2, `both uplinks in the default group: ${JSON.stringify(group)}`);
      await assertReachable(lab);
      const flows = await lanFlows(lab);
      t.diagnostic(`LAN flows: ${JSON.stringify(flows)}`);
      assert.ok(flows.cloud1! > 5 && flows.cloud2! > 5, `LAN flows not over both: ${JSON.stringify(flows)}`);
    });
  });

  it('two static uplinks in 192.168.1.0/24 with gateway .1: both reachable, LAN flows over both', async (t) => {
    const home = (n: number): KindUplink => ({
      name: `home${n}`, routerIf: `eth${n}`, address: `192.168.1.${1 + n}`,
      router: [`addr add 192.168.1.${1 + n}/24 dev eth${n}`],
      provider: ['addr add 192.168.1.1/24 dev cust'],
    });
    await withKindsLab('c', [home(1), home(2)], async (lab) => {
      const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: home1, interface: eth1, address: 192.168.1.2/24, gateway: 192.168.1.1}
  - {name: home2, interface: eth2, address: 192.168.1.3/24, gateway: 192.168.1.1}
`);
      const check = await uplinkd(lab.ns.router, ['check', '-c', config]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      t.diagnostic(await apply(lab, config));
      await assertReachable(lab);
      const flows = await lanFlows(lab);
      t.diagnostic(`LAN flows: ${JSON.stringify(flows)}`);
      assert.ok(flows.home1! > 5 && flows.home2! > 5, `LAN flows not over both: ${JSON.stringify(flows)}`);
    });
  });
});
