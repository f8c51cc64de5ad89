// Issue 8, every connected network reachable from every uplink address: a bridge with a host
// behind it, created after the daemon started and never listed in `lan:`, reaches both uplink
// addresses by TCP once its address is up (replies from an uplink address follow that uplink's
// table, which must hold the bridge's network); deleting the bridge leaves no route behind.
// The same for a VPN-like tunnel: a tun device that socat creates after the daemon started, with the
// VPN peer at its far end.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { ipIn, ipJson, nsArgv, run, sleep, waitFor } from '../../lab/exec';
import { kindsLabDown, kindsLabUp, writeKindsConfig, type KindsLab, type KindUplink } from '../../lab/kinds';
import { startTcpEcho, tcpProbe } from '../../lab/traffic';
import { NEEDS_ROOT } from './support';

const PREFIX = `u8c${process.pid % 1000}-`;
const HOST_NS = `${PREFIX}h`;
const PORT = 8089;

const uplink = (n: number): KindUplink => ({
  name: `isp${n}`, routerIf: `eth${n}`, address: `10.2${n}.0.2`,
  router: [`addr add 10.2${n}.0.2/24 dev eth${n}`], provider: [`addr add 10.2${n}.0.1/24 dev cust`],
});

/** The kinds lab with two static uplinks, a TCP echo on the router and the config for `uplinkd run` (5 ms debounce). */
async function twoUplinkLab(prefix: string): Promise<KindsLab & { config: string }> {
  const lab = await kindsLabUp(prefix, [uplink(1), uplink(2)]);
  await startTcpEcho(lab.ns.router, PORT);
  const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: isp1, interface: eth1, address: 10.21.0.2/24, gateway: 10.21.0.1}
  - {name: isp2, interface: eth2, address: 10.22.0.2/24, gateway: 10.22.0.1}
`, 'daemon:\n  debounce: 5ms\n  resync_interval: 30s\n');
  return { ...lab, config };
}

describe('networks behind interfaces created after the daemon started (issue 8)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await run('ip', ['netns', 'del', HOST_NS], { allowFail: true });
    await kindsLabDown(PREFIX);
  });

  it('a host behind a new bridge reaches both uplink addresses by TCP; deleting the bridge leaves no stale route', async (t) => {
    await run('ip', ['netns', 'del', HOST_NS], { allowFail: true });
    const lab = await twoUplinkLab(PREFIX);
    daemon = await startDaemon(lab.ns.router, lab.config);

    // Docker's way: a bridge with a generated name, a veth into the container's namespace.
    await run('ip', ['netns', 'add', HOST_NS]);
    await ipIn(lab.ns.router, ['link', 'add', 'br-5e1f', 'type', 'bridge']);
    await ipIn(lab.ns.router, ['link', 'add', 'vethc', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', HOST_NS]);
    await ipIn(lab.ns.router, ['link', 'set', 'vethc', 'master', 'br-5e1f', 'up']);
    await ipIn(HOST_NS, ['-batch', '-'], { input: 'link set lo up\nlink set eth0 up\naddr add 172.17.0.2/16 dev eth0\nroute add default via 172.17.0.1\n' });
    await ipIn(lab.ns.router, ['link', 'set', 'br-5e1f', 'up']);
    await ipIn(lab.ns.router, ['addr', 'add', '172.17.0.1/16', 'dev', 'br-5e1f']);
    const since = Date.now();
    for (const u of lab.uplinks) {
      await waitFor(`TCP from the container to ${u.address}`, async () => ((await tcpProbe(HOST_NS, u.address, PORT, 300)) === '172.17.0.2' ? true : undefined), 10_000, 50);
    }
    t.diagnostic(`both uplink addresses answered the container ${Date.now() - since} ms after the bridge got its address`);

    await ipIn(lab.ns.router, ['link', 'del', 'br-5e1f']);
    const stale = async (): Promise<string[]> => {
      const routes = await ipJson<{ dst: string; dev?: string }>(lab.ns.router, ['route', 'show', 'table', 'all', 'proto', '117']);
      return routes.filter((r) => r.dst.startsWith('172.17.') || r.dev === 'br-5e1f').map((r) => JSON.stringify(r));
    };
    await waitFor('no route to the deleted bridge', async () => ((await stale()).length === 0 ? true : undefined), 5_000, 50)
      .catch(async () => assert.fail(`stale routes: ${(await stale()).join(' ')}`));
  });
});

const LANR_PREFIX = `u8r${process.pid % 1000}-`;
const LAN_ROUTER_NS = `${LANR_PREFIX}r2`;

describe('networks behind a LAN router on nexthop objects (FRR) and over ECMP hops', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await run('ip', ['netns', 'del', LAN_ROUTER_NS], { allowFail: true });
    await kindsLabDown(LANR_PREFIX);
  });

  it('hosts behind it reach both uplink addresses by TCP: main\'s nhid, group and multipath routes are copied into the uplink tables', async () => {
    await run('ip', ['netns', 'del', LAN_ROUTER_NS], { allowFail: true });
    const lab = await twoUplinkLab(LANR_PREFIX);
    daemon = await startDaemon(lab.ns.router, lab.config);
    // The LAN router: two addresses on the LAN (two ECMP next hops), its networks' hosts on its loopback; each
    // reaches one uplink address with a source from another of its networks.
    await run('ip', ['netns', 'add', LAN_ROUTER_NS]);
    await ipIn(lab.ns.router, ['link', 'add', 'lanr', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', LAN_ROUTER_NS]);
    await ipIn(LAN_ROUTER_NS, ['-batch', '-'], { input: ['link set lo up', 'link set eth0 up', 'addr add 10.99.0.2/24 dev eth0',
      'addr add 10.99.0.3/24 dev eth0', 'addr add 10.98.0.1/32 dev lo', 'addr add 10.97.0.1/32 dev lo', 'addr add 10.96.0.1/32 dev lo',
      'route add 10.21.0.2 via 10.99.0.1 src 10.98.0.1', 'route add 10.22.0.2 via 10.99.0.1 src 10.97.0.1', ''].join('\n') });
    // On the router, as FRR installs them (nexthop objects) and as ECMP looks without them.
    await ipIn(lab.ns.router, ['-batch', '-'], { input: ['link set lanr up', 'addr add 10.99.0.1/24 dev lanr',
      'nexthop add id 501 via 10.99.0.2 dev lanr proto 186', 'nexthop add id 502 via 10.99.0.3 dev lanr proto 186',
      'nexthop add id 503 group 501/502 proto 186', 'route add 10.98.0.0/24 nhid 501 proto 186', 'route add 10.96.0.0/24 nhid 503 proto 186',
      'route add 10.97.0.0/24 proto 186 nexthop via 10.99.0.2 dev lanr nexthop via 10.99.0.3 dev lanr', ''].join('\n') });
    await waitFor('TCP from 10.98.0.1 (nhid route) to isp1\'s address', async () => ((await tcpProbe(LAN_ROUTER_NS, '10.21.0.2', PORT, 300)) === '10.98.0.1' ? true : undefined), 10_000, 50);
    await waitFor('TCP from 10.97.0.1 (ECMP route) to isp2\'s address', async () => ((await tcpProbe(LAN_ROUTER_NS, '10.22.0.2', PORT, 300)) === '10.97.0.1' ? true : undefined), 10_000, 50);
    for (const u of lab.uplinks) {
      const [got] = await ipJson<{ dev: string }>(lab.ns.router, ['route', 'get', '10.96.0.1', 'from', u.address]);
      assert.equal(got?.dev, 'lanr', `a reply from ${u.address} to the group's network leaves through the LAN`);
    }
    // A full-tunnel VPN through the LAN router (the default in two halves, as OpenVPN's redirect-gateway def1 sets):
    // LAN traffic follows it through main, but replies from the uplink addresses keep leaving through their uplinks.
    await ipIn(lab.ns.router, ['-batch', '-'], { input: ['route add 0.0.0.0/1 via 10.99.0.2 dev lanr proto static',
      'route add 128.0.0.0/1 via 10.99.0.2 dev lanr proto static', 'route add 10.95.0.0/24 via 10.99.0.2 dev lanr proto static', ''].join('\n') });
    // The cycle that saw them has copied the network added with them.
    await waitFor('10.95.0.0/24 in the uplink tables', async () =>
      ((await ipJson<{ dst: string }>(lab.ns.router, ['route', 'show', 'table', 'all', 'proto', '117'])).filter((r) => r.dst === '10.95.0.0/24').length === 2 ? true : undefined), 5_000, 50);
    for (const u of lab.uplinks) {
      const [got] = await ipJson<{ dev: string }>(lab.ns.router, ['route', 'get', '192.0.2.200', 'from', u.address]);
      assert.equal(got?.dev, u.routerIf, `a reply from ${u.address} to the internet leaves through its uplink, not the tunnel`);
    }
    // The group loses its LAN hops' worth: a route through an uplink among them is not the LAN's, and is not copied.
    await ipIn(lab.ns.router, ['-batch', '-'], { input: 'nexthop add id 504 via 10.21.0.1 dev eth1 proto 186\nnexthop replace id 503 group 501/504 proto 186\n' });
    await waitFor('the mixed group\'s network gone from the uplink tables', async () => {
      const copies = await ipJson<{ dst: string }>(lab.ns.router, ['route', 'show', 'table', 'all', 'proto', '117']);
      return copies.some((r) => r.dst === '10.96.0.0/24') ? undefined : true;
    }, 5_000, 50);
  });
});

const TUN_PREFIX = `u8t${process.pid % 1000}-`;
const PEER_NS = `${TUN_PREFIX}v`;
const TUN_PORT = 8090;
const UNDERLAY_PORT = 8008;

/**
 * One end of a userspace tunnel: socat opens /dev/net/tun itself (TUNSETIFF), so the tun device
 * exists exactly as long as this socat runs (not persistent) and goes when it exits. The packets
 * travel as UDP datagrams over the underlay veth; UDP-DATAGRAM (unconnected) so that an ICMP port
 * unreachable while the other end is not up yet does not end socat.
 */
function tunnelEnd(ns: string, local: string, remote: string, tunAddress: string): ChildProcess {
  const child = spawn('ip', nsArgv(ns, 'socat', [
    `UDP-DATAGRAM:${remote}:${UNDERLAY_PORT},bind=${local}:${UNDERLAY_PORT}`,
    `TUN:${tunAddress},tun-name=tun8,tun-type=tun,iff-no-pi,iff-up`,
  ]), { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The IPv4 addresses on `dev` in `ns`; empty when the device does not exist. */
async function addressesOf(ns: string, dev: string): Promise<string[]> {
  const r = await ipIn(ns, ['-j', 'addr', 'show', 'dev', dev], { allowFail: true });
  if (r.code !== 0 || r.stdout.trim() === '') return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { family: string; local: string }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local));
}

describe('a network behind a tun device created after the daemon started (issue 8)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  const tunnels: ChildProcess[] = [];
  after(async () => {
    if (daemon) {
      daemon.child.kill('SIGCONT'); // in case the control failed while the daemon was paused
      await stopDaemon(daemon, 'SIGTERM');
    }
    for (const c of tunnels) await stopProcess(c);
    await run('ip', ['netns', 'del', PEER_NS], { allowFail: true });
    await kindsLabDown(TUN_PREFIX);
  });

  it('the VPN peer reaches both uplink addresses by TCP through the tunnel; the tunnel going leaves no stale route', async (t) => {
    await run('ip', ['netns', 'del', PEER_NS], { allowFail: true });
    const lab = await kindsLabUp(TUN_PREFIX, [uplink(1), uplink(2)]);
    const router = lab.ns.router;
    await startTcpEcho(router, TUN_PORT);
    const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: isp1, interface: eth1, address: 10.21.0.2/24, gateway: 10.21.0.1}
  - {name: isp2, interface: eth2, address: 10.22.0.2/24, gateway: 10.22.0.1}
`, 'daemon:\n  debounce: 5ms\n  resync_interval: 30s\n');
    daemon = await startDaemon(router, config);
    const d = daemon;

    // The VPN peer's namespace, reached over its own underlay veth (198.18.8.0/30).
    await run('ip', ['netns', 'add', PEER_NS]);
    await ipIn(router, ['link', 'add', 'vpn0', 'type', 'veth', 'peer', 'name', 'vpn0', 'netns', PEER_NS]);
    await ipIn(PEER_NS, ['-batch', '-'], { input: 'link set lo up\nlink set vpn0 up\naddr add 198.18.8.2/30 dev vpn0\n' });
    await ipIn(router, ['-batch', '-'], { input: 'link set vpn0 up\naddr add 198.18.8.1/30 dev vpn0\n' });
    tunnels.push(tunnelEnd(PEER_NS, '198.18.8.2', '198.18.8.1', '10.8.0.2/24'));
    await waitFor('tun8 in the VPN peer', async () => ((await addressesOf(PEER_NS, 'tun8')).includes('10.8.0.2') ? true : undefined), 5_000, 20);
    // The peer sends everything through the tunnel, as with a VPN's redirect-gateway.
    await ipIn(PEER_NS, ['route', 'add', 'default', 'dev', 'tun8']);

    // The router's end: socat creates tun8 (there is none before) and gives it 10.8.0.1/24.
    assert.deepEqual(await addressesOf(router, 'tun8'), [], 'tun8 must not exist in the router before socat creates it');
    const routerEnd = tunnelEnd(router, '198.18.8.1', '198.18.8.2', '10.8.0.1/24');
    tunnels.push(routerEnd);
    await waitFor('10.8.0.1 on tun8 in the router', async () => ((await addressesOf(router, 'tun8')).includes('10.8.0.1') ? true : undefined), 5_000, 10);
    const since = Date.now();
    const copies = async () => (await ipJson<{ dst: string }>(router, ['route', 'show', 'table', 'all', 'proto', '117', 'dev', 'tun8'])).filter((r) => r.dst === '10.8.0.0/24');
    await waitFor('10.8.0.0/24 dev tun8 in both uplink tables', async () => ((await copies()).length === 2 ? true : undefined), 10_000, 10);
    t.diagnostic(`10.8.0.0/24 dev tun8 was in both uplink tables ${Date.now() - since} ms after tun8 got its address`);
    for (const u of lab.uplinks) {
      await waitFor(`TCP from the VPN peer to ${u.address}`, async () => ((await tcpProbe(PEER_NS, u.address, TUN_PORT, 300)) === '10.8.0.2' ? true : undefined), 10_000, 20);
    }
    t.diagnostic(`both uplink addresses answered the VPN peer ${Date.now() - since} ms after tun8 got its address`);

    // The replies from an uplink address follow that uplink's table: it must route the peer into tun8.
    const tableOf = async (address: string): Promise<number> => {
      const rule = (await ipJson<{ src?: string; table: string }>(router, ['rule', 'show'])).find((r) => r.src === address);
      assert.ok(rule, `no rule from ${address}`);
      return Number(rule.table);
    };
    const routeGet = async (from: string) => (await ipJson<{ dev: string; gateway?: string; table?: string }>(router, ['route', 'get', '10.8.0.2', 'from', from]))[0]!;
    const isp1Table = await tableOf('10.21.0.2');
    for (const u of lab.uplinks) {
      const r = await routeGet(u.address);
      assert.equal(r.dev, 'tun8', `from ${u.address} the VPN peer resolves to ${JSON.stringify(r)}`);
      assert.equal(Number(r.table), await tableOf(u.address), `from ${u.address} the lookup must end in the uplink's table: ${JSON.stringify(r)}`);
    }

    // Control, so that the checks above can fail: the same kernel, tunnel and peer, with only uplinkd's
    // copy of 10.8.0.0/24 missing from isp1's table (the daemon paused, so it cannot put it back at
    // once). Then a reply from isp1's address takes isp1's default route to the ISP, which has no way to
    // the peer, and the connection fails, while isp2's address (copy in place) still answers.
    d.child.kill('SIGSTOP');
    try {
      await ipIn(router, ['route', 'del', '10.8.0.0/24', 'dev', 'tun8', 'table', String(isp1Table), 'proto', '117']);
      const r = await routeGet('10.21.0.2');
      assert.deepEqual([r.dev, r.gateway], ['eth1', '10.21.0.1'], `without the copy the peer must resolve via isp1's gateway: ${JSON.stringify(r)}`);
      assert.equal(await tcpProbe(PEER_NS, '10.21.0.2', TUN_PORT, 1000), undefined, 'TCP to isp1 must fail without the copy');
      assert.equal(await tcpProbe(PEER_NS, '10.22.0.2', TUN_PORT, 1000), '10.8.0.2', 'TCP to isp2 (copy in place) still works');
    } finally {
      d.child.kill('SIGCONT');
    }
    // The daemon follows its own routes: it puts the copy back.
    const resumed = Date.now();
    await waitFor('TCP from the VPN peer to 10.21.0.2 again', async () => ((await tcpProbe(PEER_NS, '10.21.0.2', TUN_PORT, 300)) === '10.8.0.2' ? true : undefined), 10_000, 20);
    t.diagnostic(`isp1's copy was restored and answered ${Date.now() - resumed} ms after the daemon resumed`);

    // The tunnel goes: socat exits and the kernel deletes tun8.
    await stopProcess(routerEnd);
    await waitFor('tun8 gone from the router', async () => ((await ipIn(router, ['link', 'show', 'dev', 'tun8'], { allowFail: true })).code !== 0 ? true : undefined), 5_000, 20);
    const stale = async (): Promise<string[]> => {
      const routes = await ipJson<{ dst: string; dev?: string }>(router, ['route', 'show', 'table', 'all', 'proto', '117']);
      return routes.filter((r) => r.dst.startsWith('10.8.0.') || r.dev === 'tun8').map((r) => JSON.stringify(r));
    };
    // Let the daemon's cycle for the removal run, then nothing of the tunnel may be left or come back.
    await sleep(300);
    assert.deepEqual(await stale(), [], 'stale routes of the tunnel');
    const failures = d.lines.filter((l) => /event=(apply-failed|cycle-failed)/.test(l));
    assert.deepEqual(failures, [], 'the daemon failed changes');
  });
});
