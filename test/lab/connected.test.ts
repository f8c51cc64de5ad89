// Issue 8, every connected network reachable from every uplink address: a bridge with a host
// behind it, created after the daemon started and never listed in `lan:`, reaches both uplink
// addresses by TCP once its address is up (replies from an uplink address follow that uplink's
// table, which must hold the bridge's network); deleting the bridge leaves no route behind.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../src/lab/daemon';
import { ipIn, ipJson, run, waitFor } from '../../src/lab/exec';
import { kindsLabDown, kindsLabUp, writeKindsConfig, type KindUplink } from '../../src/lab/kinds';
import { startTcpEcho, tcpProbe } from '../../src/lab/traffic';
import { NEEDS_ROOT } from './support';

const PREFIX = `u8c${process.pid % 1000}-`;
const HOST_NS = `${PREFIX}h`;
const PORT = 8089;

const uplink = (n: number): KindUplink => ({
  name: `isp${n}`, routerIf: `eth${n}`, address: `10.2${n}.0.2`,
  router: [`addr add 10.2${n}.0.2/24 dev eth${n}`], provider: [`addr add 10.2${n}.0.1/24 dev cust`],
});

describe('networks behind interfaces created after the daemon started (issue 8)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await run('ip', ['netns', 'del', HOST_NS], { allowFail: true });
    await kindsLabDown(PREFIX);
  });

  it('a host behind a new bridge reaches both uplink addresses by TCP; deleting the bridge leaves no stale route', async (t) => {
    await run('ip', ['netns', 'del', HOST_NS], { allowFail: true });
    const lab = await kindsLabUp(PREFIX, [uplink(1), uplink(2)]);
    await startTcpEcho(lab.ns.router, PORT);
    const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: isp1, interface: eth1, address: 10.21.0.2/24, gateway: 10.21.0.1}
  - {name: isp2, interface: eth2, address: 10.22.0.2/24, gateway: 10.22.0.1}
`, 'daemon:\n  debounce: 5ms\n  resync_interval: 30s\n');
    daemon = await startDaemon(lab.ns.router, config);

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
