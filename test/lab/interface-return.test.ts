// Issue 8: an uplink whose interface disappears (pppd hung up, a modem unplugged) is `waiting`,
// and comes back by itself when the interface appears again under the same name with a new
// ifindex: the daemon routes it again and the internet host reaches its address.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startDaemon, stopDaemon, waitForLine, type RunningDaemon } from '../../lab/daemon';
import { ipIn, ipJson, waitFor } from '../../lab/exec';
import { kindsLabDown, kindsLabUp, writeKindsConfig, type KindUplink } from '../../lab/kinds';
import { startTcpEcho, tcpProbe } from '../../lab/traffic';
import { NEEDS_ROOT } from './support';

const PREFIX = `u8d${process.pid % 1000}-`;
const PORT = 8087;

const uplink = (n: number): KindUplink => ({
  name: `isp${n}`, routerIf: `eth${n}`, address: `10.3${n}.0.2`,
  router: [`addr add 10.3${n}.0.2/24 dev eth${n}`], provider: [`addr add 10.3${n}.0.1/24 dev cust`],
});

describe('an uplink interface that goes and comes back (issue 8)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGTERM');
    await kindsLabDown(PREFIX);
  });

  it('is waiting while absent and is routed again when re-created with a new ifindex', async (t) => {
    const lab = await kindsLabUp(PREFIX, [uplink(1), uplink(2)]);
    await startTcpEcho(lab.ns.router, PORT);
    const config = await writeKindsConfig(lab, 'uplinkd.yaml', `
  - {name: isp1, interface: eth1, address: 10.31.0.2/24, gateway: 10.31.0.1}
  - {name: isp2, learn: true, interface: eth2}
`, 'daemon:\n  debounce: 5ms\n  resync_interval: 30s\n');
    await ipIn(lab.ns.router, ['route', 'add', 'default', 'via', '10.32.0.1', 'dev', 'eth2', 'metric', '100']);
    daemon = await startDaemon(lab.ns.router, config);
    assert.equal(await waitFor('TCP to isp2', async () => tcpProbe(lab.ns.inet, '10.32.0.2', PORT, 500), 10_000), lab.internetHost);
    const index = async (): Promise<number | undefined> => (await ipJson<{ ifindex: number }>(lab.ns.router, ['link', 'show', 'eth2']).catch(() => []))[0]?.ifindex;
    const before = await index();

    await ipIn(lab.ns.router, ['link', 'del', 'eth2']);
    await waitForLine(daemon, /event=uplink uplink=isp2 state=waiting .*interface eth2 does not exist/, 5_000);

    // The link comes back under the same name (a new ifindex), with its address and the client's default.
    const p2 = lab.ns.providers[1]!;
    await ipIn(lab.ns.router, ['link', 'add', 'eth2', 'type', 'veth', 'peer', 'name', 'cust', 'netns', p2]);
    await ipIn(p2, ['-batch', '-'], { input: 'link set cust up\naddr add 10.32.0.1/24 dev cust\n' });
    await ipIn(lab.ns.router, ['-batch', '-'], { input: 'link set eth2 up\naddr add 10.32.0.2/24 dev eth2\nroute add default via 10.32.0.1 dev eth2 metric 100\n' });
    const now = await index();
    t.diagnostic(`eth2 ifindex ${before} -> ${now}`);
    assert.notEqual(now, before);
    assert.equal(await waitFor('TCP to isp2 again', async () => tcpProbe(lab.ns.inet, '10.32.0.2', PORT, 500), 10_000), lab.internetHost);
    const group = await ipJson<{ group?: { id: number }[] }>(lab.ns.router, ['nexthop', 'show', 'id', '1000']);
    assert.equal(group[0]?.group?.length, 2, `isp2 is back in the default group: ${JSON.stringify(group)}`);
  });
});
