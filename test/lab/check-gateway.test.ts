// A static gateway that is one of the router's own addresses (here the LAN's), on the real kernel: the kernel refuses
// the on-link nexthop uplinkd would write; `uplinkd check` reads the kernel's addresses and reports it with file,
// line and field (exit 2); `status` names the cause instead of a refusal; a gateway that is not the router's passes.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ipIn } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `fx7-cg${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = `${stateDirOf(PREFIX)}r`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');
const text = (gateway: string) => ['uplinks:', `  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: ${gateway}}`, ...statePaths(STATE), ''].join('\n');

describe('a static gateway that is one of the router\'s addresses', { skip: NEEDS_ROOT }, () => {
  before(async () => {
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24'], ['lan0', '10.0.0.1/24']]);
  });
  after(async () => {
    await removeNamespace(NS, STATE);
  });

  it('the kernel refuses it; check reports it with file, line and field and exits 2; status names the cause', async () => {
    const refused = await ipIn(NS, ['nexthop', 'add', 'id', '5', 'via', '10.0.0.1', 'dev', 'wan0', 'onlink'], { allowFail: true });
    assert.notEqual(refused.code, 0, 'the kernel takes a nexthop via its own address');
    assert.match(refused.stderr, /Nexthop has invalid gateway/);

    await fs.writeFile(CONFIG, text('10.0.0.1'));
    const check = await uplinkd(NS, ['check', '-c', CONFIG]);
    assert.equal(check.code, 2, `${check.stdout}\n${check.stderr}`);
    assert.match(check.stderr, new RegExp(`${CONFIG.replace(/[.]/g, '\\.')}:2:\\d+: uplinks\\[0\\]\\.gateway: 10\\.0\\.0\\.1 is an address of this router \\(on lan0;`));

    const status = await uplinkd(NS, ['status', '-c', CONFIG]);
    assert.match(status.stdout, /gateway 10\.0\.0\.1 is an address of this router \(on lan0\)/, status.stdout);

    await fs.writeFile(CONFIG, text('198.51.100.1'));
    const ok = await uplinkd(NS, ['check', '-c', CONFIG]);
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
  });
});
