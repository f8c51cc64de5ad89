import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { clearMarkedConntrack, clearUplinkConntrack, conntrackArgs, conntrackMarkArgs, deletedCount, type CommandRunner } from './conntrack';

describe('conntrack clearing', () => {
  it('deletes by reply destination = the uplink address, IPv4 only, never a flush', () => {
    assert.deepEqual(conntrackArgs('198.51.100.2'), ['-D', '-f', 'ipv4', '--reply-dst', '198.51.100.2']);
    assert.throws(() => conntrackArgs(''), /not an IPv4 address/);
    assert.throws(() => conntrackArgs('198.51.100.0/24'), /not an IPv4 address/);
  });

  it('deletes by pinning mark within uplinkd\'s mask only', () => {
    assert.deepEqual(conntrackMarkArgs(0x1a000000, 0x7f000000), ['-D', '-f', 'ipv4', '--mark', '0x1a000000/0x7f000000']);
    assert.throws(() => conntrackMarkArgs(0, 0x7f000000), /not a non-zero value inside mask/);
    assert.throws(() => conntrackMarkArgs(0x80000000, 0x7f000000), /not a non-zero value inside mask/);
  });

  it('reads the count the tool prints', () => {
    assert.equal(deletedCount('conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n'), 2);
    assert.equal(deletedCount('conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.'), 0);
    assert.equal(deletedCount('something else'), undefined);
  });

  it('takes exit 1 with "0 flow entries" as nothing to delete, and reports real failures', async () => {
    const calls: string[][] = [];
    const none: CommandRunner = async (file, args) => {
      calls.push([file, ...args]);
      return { code: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' };
    };
    assert.equal(await clearUplinkConntrack('198.51.100.2', none), 0);
    assert.deepEqual(calls, [['conntrack', '-D', '-f', 'ipv4', '--reply-dst', '198.51.100.2']]);

    const denied: CommandRunner = async () => ({ code: 1, stdout: '', stderr: 'conntrack v1.4.7: Operation not permitted\n' });
    await assert.rejects(clearUplinkConntrack('198.51.100.2', denied), /failed \(exit 1\): conntrack v1\.4\.7: Operation not permitted/);

    const missing: CommandRunner = async () => ({
      code: null, stdout: '', stderr: '', error: Object.assign(new Error('spawn conntrack ENOENT'), { code: 'ENOENT' }),
    });
    await assert.rejects(clearUplinkConntrack('198.51.100.2', missing), /conntrack is not installed/);
  });

  const skip = process.getuid?.() !== 0 ? 'needs root (network namespace)' : hasConntrack() ? undefined : 'needs the conntrack tool';
  it('clears only the flows of the dead uplink (network namespace)', { skip }, async () => {
    const ns = `ulhl-${process.pid}-ct`;
    const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const flow = (src: string, sport: number, replyDst: string) =>
      inNs('conntrack', '-I', '-p', 'udp', '-s', src, '-d', '203.0.113.5', '--sport', String(sport), '--dport', '53',
        '--reply-src', '203.0.113.5', '--reply-dst', replyDst, '--reply-port-src', '53', '--reply-port-dst', String(sport), '-t', '60');
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      flow('198.51.100.2', 1000, '198.51.100.2'); // from the uplink itself
      flow('10.0.0.9', 1001, '198.51.100.2'); // a LAN host masqueraded to the uplink
      flow('192.0.2.2', 1000, '192.0.2.2'); // the other uplink
      const inNamespace: CommandRunner = (file, args) =>
        new Promise((resolve) => {
          execFile('ip', ['netns', 'exec', ns, file, ...args], (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
            resolve({ code, stdout, stderr });
          });
        });
      assert.equal(await clearUplinkConntrack('198.51.100.2', inNamespace), 2);
      const left = inNs('conntrack', '-L');
      assert.doesNotMatch(left, /198\.51\.100\.2/);
      assert.match(left, /src=192\.0\.2\.2 dst=203\.0\.113\.5/);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  it('clears the flows pinned to the dead uplink by mark, whatever other bits they carry (network namespace)', { skip }, async () => {
    const ns = `hf${process.pid % 1000}-ctm`;
    const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // Routed LAN flows (no masquerade): the reply goes to the LAN host, only the mark tells the uplink.
    const flow = (src: string, sport: number, mark: number) =>
      inNs('conntrack', '-I', '-p', 'udp', '-s', src, '-d', '203.0.113.5', '--sport', String(sport), '--dport', '53',
        '--reply-src', '203.0.113.5', '--reply-dst', src, '--reply-port-src', '53', '--reply-port-dst', String(sport), '-t', '60', '-m', String(mark));
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      flow('10.0.0.9', 1000, 0x1a000000); // pinned to isp1
      flow('10.0.0.9', 1001, 0x1a000005); // pinned to isp1, with another program's low bits
      flow('10.0.0.9', 1002, 0x1b000000); // pinned to isp2
      flow('10.0.0.9', 1003, 0x00000005); // only another program's bits: not ours
      const inNamespace: CommandRunner = (file, args) =>
        new Promise((resolve) => {
          execFile('ip', ['netns', 'exec', ns, file, ...args], (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
            resolve({ code, stdout, stderr });
          });
        });
      assert.equal(await clearMarkedConntrack(0x1a000000, 0x7f000000, inNamespace), 2);
      const left = inNs('conntrack', '-L');
      assert.doesNotMatch(left, /sport=100[01] /);
      assert.match(left, /sport=1002 .*mark=452984832/);
      assert.match(left, /sport=1003 .*mark=5/);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});

function hasConntrack(): boolean {
  try {
    execFileSync('conntrack', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
