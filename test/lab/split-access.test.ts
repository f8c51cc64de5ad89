// Issue 2 acceptance 1 and 3: split access to each uplink address from the internet
// host (fails without uplinkd, works with it) and the DHCP uplink's rule and gateway.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { ipIn } from '../../lab/exec';
import { startTcpEcho, tcpTally } from '../../lab/traffic';
import { apply, assertAllReachable, assertDhcpUplinkRouted, down, freshLab, NEEDS_ROOT, reachUplinks } from './support';

const PREFIX = `ult1${process.pid % 1000}-`;
const PORT = 8081;

describe('split access (issue 2)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    await startTcpEcho(lab.ns.router, PORT); // listens on every uplink address
  });
  after(async () => {
    await labDown(PREFIX);
  });

  it('without uplinkd, at least one uplink address is unreachable (the strict provider drops the reply)', async () => {
    const reach = await reachUplinks(lab, PORT);
    const broken = reach.filter((r) => !r.ping && r.tcpPeer === undefined);
    assert.ok(broken.length >= 1, `every uplink answered without uplinkd: ${JSON.stringify(reach)}`);
  });

  it('with uplinkd apply, ping and TCP reach every uplink address', async () => {
    const n = await apply(lab);
    assert.ok(n > 0, 'the first apply changed nothing');
    assertAllReachable(lab, await reachUplinks(lab, PORT));
  });

  it('the DHCP uplink has a rule for its leased address and its gateway in its table', async () => {
    await assertDhcpUplinkRouted(lab);
  });

  it('an address added beside a static uplink\'s own (an alias for a service): the router\'s connections bound to it leave through that uplink', async () => {
    const u = lab.uplinks.find((x) => x.mode === 'static')!;
    const alias = u.address.replace(/\.\d+$/, '.77');
    await ipIn(lab.ns.router, ['addr', 'add', `${alias}/${u.prefixlen}`, 'dev', u.interface]);
    await apply(lab);
    await startTcpEcho(lab.ns.inet, PORT);
    // Twelve connections from the alias: balanced over both uplinks, some would meet the other provider's source filter.
    const t = await tcpTally(lab.ns.router, lab.internetHost, PORT, { count: 12, timeoutMs: 1500, source: alias });
    assert.deepEqual({ seen: t.seen, failed: t.failed }, { seen: { [alias]: 12 }, failed: 0 }, JSON.stringify(t.errors));
  });

  it('after uplinkd down the wrong-path problem is back', async () => {
    await down(lab);
    const reach = await reachUplinks(lab, PORT);
    assert.ok(reach.some((r) => !r.ping && r.tcpPeer === undefined), JSON.stringify(reach));
  });
});
