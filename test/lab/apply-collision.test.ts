// `uplinkd apply` when another program's object holds uplinkd's place (a nexthop with an uplink's id): the
// uplink it blocks stays out, so the kernel does not match the plan, and apply says so and exits 1, as status does.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { ipIn } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `u7a${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = `${stateDirOf(PREFIX)}r`;

describe('apply blocked by another program\'s nexthop', { skip: NEEDS_ROOT }, () => {
  after(() => removeNamespace(NS, STATE));

  it('exits 1 naming the collision; once the foreign nexthop is gone, apply converges and exits 0', async () => {
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24'], ['wan1', '203.0.113.2/24']]);
    const config = path.join(STATE, 'uplinkd.yaml');
    await fs.writeFile(config, ['uplinks:',
      '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1, table: 1141}',
      '  - {name: isp2, interface: wan1, address: 203.0.113.2/24, gateway: 203.0.113.1, table: 1727}',
      ...statePaths(STATE), ''].join('\n'));
    await ipIn(NS, ['nexthop', 'add', 'id', '1141', 'via', '198.51.100.1', 'dev', 'wan0', 'proto', 'static']);
    const blocked = await uplinkd(NS, ['apply', '-c', config]);
    assert.equal(blocked.code, 1, blocked.stdout);
    assert.match(blocked.stderr, /blocked: isp1: foreign nexthop 'id 1141 via 198\.51\.100\.1/);
    assert.match(blocked.stdout, /1 blocked by another program's objects \(the kernel does NOT match the plan\)/);
    await ipIn(NS, ['nexthop', 'del', 'id', '1141']);
    const clear = await uplinkd(NS, ['apply', '-c', config]);
    assert.equal(clear.code, 0, clear.stderr);
    assert.match((await ipIn(NS, ['nexthop', 'show', 'id', '1000'])).stdout, /1141/);
  });
});
