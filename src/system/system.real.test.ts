// Root only, inside a namespace this test creates: the sysctl lands in that namespace,
// and iproute2 6.x reads the rendered name files (via /etc/netns/<ns>/iproute2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { renderRtProtos, renderRtTables } from './iproute2-names';
import { writeOwnedFile } from './owned-file';

const NS = `ulfact-${process.pid}-sys`;
const ETC = `/etc/netns/${NS}`;
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const inNs = (args: string[]): string => run('ip', ['netns', 'exec', NS, ...args]);
const skip = process.getuid?.() === 0 ? false : 'needs root (network namespaces)';

test('sysctl and iproute2 name files inside a namespace', { skip }, async (t) => {
  const host = () => ['policy', 'fields'].map((k) => run('cat', [`/proc/sys/net/ipv4/fib_multipath_hash_${k}`]));
  const hostBefore = host();
  try {
    await writeOwnedFile(`${ETC}/iproute2/rt_tables.d/uplinkd.conf`, renderRtTables([{ number: 1001, name: 'uplinkd-wan1' }]));
    await writeOwnedFile(`${ETC}/iproute2/rt_protos.d/uplinkd.conf`, renderRtProtos([{ number: 117, name: 'uplinkd' }]));
    run('ip', ['netns', 'add', NS]);

    await t.test('setMultipathHash changes only the namespace', () => {
      const sysctl = JSON.stringify(path.join(__dirname, 'sysctl.js'));
      const code = `require(${sysctl}).setMultipathHash('l4').then((r) => process.stdout.write(JSON.stringify(r)))`;
      assert.deepEqual(JSON.parse(inNs([process.execPath, '-e', code])), { policy: 3, fields: 0x37, previous: { policy: 0, fields: 7 } });
      assert.equal(inNs(['cat', '/proc/sys/net/ipv4/fib_multipath_hash_policy']), '3\n');
      assert.equal(Number(inNs(['cat', '/proc/sys/net/ipv4/fib_multipath_hash_fields'])), 0x37);
      assert.deepEqual(host(), hostBefore);
    });

    await t.test('ip reads the table and protocol names', () => {
      inNs(['ip', 'route', 'add', 'blackhole', '10.9.0.0/16', 'table', 'uplinkd-wan1', 'proto', 'uplinkd']);
      assert.equal(inNs(['ip', 'route', 'show', 'table', 'uplinkd-wan1']).trim(), 'blackhole 10.9.0.0/16 proto uplinkd');
      assert.match(inNs(['ip', '-N', 'route', 'show', 'table', '1001']), /^\S+ 10\.9\.0\.0\/16 proto 117\s*$/);
    });
  } finally {
    try {
      run('ip', ['netns', 'del', NS]);
    } catch {
      // never created
    }
    rmSync(ETC, { recursive: true, force: true });
  }
});
