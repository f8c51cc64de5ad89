// The firewall mark readers (src/nft/neighbours-io.ts) in a namespace of their own: nftables is read
// in-process; iptables-nft rules are found in that ruleset, and iptables-nft-save is started only for
// those nft lists as opaque `xt` statements; iptables-legacy-save only once the namespace has legacy
// (x_tables) tables, which /proc/net/ip_tables_names shows.
// The save tools are wrapped (first in PATH) so that every start of one is recorded.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inNs, run } from '../../lab/exec';
import { NEEDS_ROOT } from './support';

const NS = `a9${process.pid % 1000}-fw`;
const MASK = 0x7f000000;

/** Prints the namespace's foreign mark uses and their warnings against MASK for 2 uplinks. */
const READER = `
const { readFirewallMarkUses } = require(${JSON.stringify(path.resolve(__dirname, '../../src/nft/neighbours-io.js'))});
const { markNeighbourWarnings } = require(${JSON.stringify(path.resolve(__dirname, '../../src/nft/neighbours.js'))});
readFirewallMarkUses().then((uses) => process.stdout.write(JSON.stringify({ uses, warnings: markNeighbourWarnings(uses, ${MASK}, 2) })));
`;

interface Read {
  uses: { where: string; value: number; mask: number }[];
  warnings: string[];
}

describe('firewall mark readers: legacy iptables read only where legacy tables exist', { skip: NEEDS_ROOT, timeout: 60_000 }, () => {
  let dir: string;
  let starts: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uplinkd-a9fw-'));
    starts = path.join(dir, 'starts');
    await fs.writeFile(starts, '');
    for (const tool of ['iptables-save', 'iptables-nft-save', 'iptables-legacy-save']) {
      const real = (await run('sh', ['-c', `command -v ${tool}`])).stdout.trim();
      await fs.writeFile(path.join(dir, tool), `#!/bin/sh\necho ${tool} >> ${starts}\nexec ${real} "$@"\n`, { mode: 0o755 });
    }
    await run('ip', ['netns', 'del', NS], { allowFail: true });
    await run('ip', ['netns', 'add', NS]);
  });

  after(async () => {
    await run('ip', ['netns', 'del', NS], { allowFail: true });
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function read(): Promise<Read & { started: string[] }> {
    await fs.writeFile(starts, '');
    const r = await inNs(NS, process.execPath, ['-e', READER], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    const started = (await fs.readFile(starts, 'utf8')).split('\n').filter(Boolean);
    return { ...(JSON.parse(r.stdout) as Read), started };
  }

  it('no rules: nothing found, no iptables-save started', async () => {
    assert.equal((await inNs(NS, 'cat', ['/proc/net/ip_tables_names'])).stdout, '');
    assert.deepEqual(await read(), { uses: [], warnings: [], started: [] });
  });

  it('an iptables-nft mark match, which nft expresses natively: found in the nftables ruleset, no iptables-save started', async () => {
    await inNs(NS, 'iptables-nft', ['-t', 'mangle', '-A', 'PREROUTING', '-m', 'mark', '--mark', '0x4000000/0x4000000', '-j', 'ACCEPT']);
    const r = await read();
    assert.deepEqual(r.started, []);
    assert.deepEqual(r.uses, [{ where: 'nft table ip mangle chain PREROUTING', value: 0x4000000, mask: 0x4000000 }]);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /^nft table ip mangle chain PREROUTING uses mark bits 0x4000000 \(value 0x4000000\), which overlaps flow pinning's mark mask 0x7f000000 in 0x04000000: /);
  });

  it('an iptables-nft MARK target, which nft lists as an opaque xt statement: iptables-nft-save is started and both rules are read from it', async () => {
    await inNs(NS, 'iptables-nft', ['-t', 'mangle', '-A', 'PREROUTING', '-j', 'MARK', '--set-mark', '0x1000000']);
    const r = await read();
    assert.deepEqual(r.started, ['iptables-nft-save']);
    assert.deepEqual(r.uses.map((u) => u.where), [
      'nft table ip mangle chain PREROUTING',
      'iptables -t mangle -A PREROUTING -m mark --mark 0x4000000/0x4000000 -j ACCEPT',
      'iptables -t mangle -A PREROUTING -j MARK --set-xmark 0x1000000/0xffffffff',
    ]);
    assert.match(r.warnings[2]!, /^iptables -t mangle -A PREROUTING -j MARK --set-xmark 0x1000000\/0xffffffff uses mark 0x1000000, which overlaps flow pinning's mark mask 0x7f000000 in 0x01000000: /);
  });

  it('a legacy MARK rule: ip_tables_names lists mangle, iptables-legacy-save is started too and its rule warned about', async () => {
    await inNs(NS, 'iptables-legacy', ['-t', 'mangle', '-A', 'PREROUTING', '-j', 'MARK', '--set-mark', '0x2000000']);
    assert.equal((await inNs(NS, 'cat', ['/proc/net/ip_tables_names'])).stdout.trim(), 'mangle');
    const r = await read();
    assert.deepEqual(r.started.sort(), ['iptables-legacy-save', 'iptables-nft-save']);
    assert.equal(r.uses.length, 4);
    assert.equal(r.uses[3]!.where, 'iptables-legacy -t mangle -A PREROUTING -j MARK --set-xmark 0x2000000/0xffffffff');
    assert.equal(r.warnings.length, 4);
    assert.match(r.warnings[3]!, /^iptables-legacy -t mangle -A PREROUTING -j MARK --set-xmark 0x2000000\/0xffffffff uses mark 0x2000000, which overlaps flow pinning's mark mask 0x7f000000 in 0x02000000: set pinning\.mark_mask to /);
  });
});
