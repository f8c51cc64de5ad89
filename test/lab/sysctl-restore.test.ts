// `multipath_hash` changes two sysctls of the router's namespace; `uplinkd down` removes what uplinkd made, so it
// puts them back as they were before uplinkd first set them, as does a configuration that no longer sets the key.
// A real namespace: the sysctls are per network namespace, the host's are never touched.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { inNs } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `u7s${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = `${stateDirOf(PREFIX)}r`;

const text = (extra: string[]) => ['uplinks:', '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1}',
  ...extra, ...statePaths(STATE), ''].join('\n');

async function hash(): Promise<[string, string]> {
  const read = async (name: string) => (await inNs(NS, 'cat', [`/proc/sys/net/ipv4/${name}`])).stdout.trim();
  return [await read('fib_multipath_hash_policy'), await read('fib_multipath_hash_fields')];
}

describe('the multipath hash sysctls are put back (down, and a configuration without multipath_hash)', { skip: NEEDS_ROOT }, () => {
  after(() => removeNamespace(NS, STATE));

  it('apply sets them, down restores the values found before; apply without the key restores them too', async () => {
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24']]);
    await inNs(NS, 'sysctl', ['-qw', 'net.ipv4.fib_multipath_hash_policy=1', 'net.ipv4.fib_multipath_hash_fields=7']);
    const l4 = path.join(STATE, 'l4.yaml');
    const plain = path.join(STATE, 'plain.yaml');
    await fs.writeFile(l4, text(['multipath_hash: l4']));
    await fs.writeFile(plain, text([]));

    assert.equal((await uplinkd(NS, ['apply', '-c', l4])).code, 0);
    assert.deepEqual(await hash(), ['3', '55']);
    const down = await uplinkd(NS, ['down', '-c', l4]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /sysctl net\.ipv4\.fib_multipath_hash_fields=7\nsysctl net\.ipv4\.fib_multipath_hash_policy=1/);
    assert.deepEqual(await hash(), ['1', '7'], 'down put them back');

    assert.equal((await uplinkd(NS, ['apply', '-c', l4])).code, 0);
    assert.equal((await uplinkd(NS, ['apply', '-c', plain])).code, 0);
    assert.deepEqual(await hash(), ['1', '7'], 'a configuration without the key put them back');
    // Changed by the admin after uplinkd set them: down leaves them and says so.
    assert.equal((await uplinkd(NS, ['apply', '-c', l4])).code, 0);
    await inNs(NS, 'sysctl', ['-qw', 'net.ipv4.fib_multipath_hash_policy=0']);
    const left = await uplinkd(NS, ['down', '-c', l4]);
    assert.match(left.stderr, /left as they are: changed since uplinkd set them/);
    assert.deepEqual(await hash(), ['0', '55']);
  });
});
