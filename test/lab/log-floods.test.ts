// Floods of one kind of log line come out as one line and a count (src/log.ts rateLimited): here a local process
// sending netlink datagrams to the daemon's notification socket, which it ignores (only the kernel, port 0, is
// trusted). Real daemon in a namespace of its own; the datagrams are real, sent from inside the namespace.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitForLine, type RunningDaemon } from '../../lab/daemon';
import { inNs } from '../../lab/exec';
import { stateDirOf } from '../../lab/topology';
import { parseLine } from '../../src/log';
import { NEEDS_ROOT, oneUplinkDaemon, removeDaemonNamespace } from './support';

const PREFIX = `m9f${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = stateDirOf(PREFIX);
const NETLINK_MODULE = path.resolve(__dirname, '..', '..', '..', 'node_modules', 'netlink');

/** Port ids of the NETLINK_ROUTE sockets in the namespace that joined multicast groups (/proc/net/netlink). */
async function subscriberPorts(): Promise<number[]> {
  const text = (await inNs(NS, 'cat', ['/proc/net/netlink'])).stdout;
  return text.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/))
    .filter(([, eth, pid, groups]) => eth === '0' && pid !== '0' && !/^0+$/.test(groups!))
    .map(([, , pid]) => Number(pid));
}

describe('log floods', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  let config = '';
  before(async () => {
    ({ daemon, config } = await oneUplinkDaemon(NS, STATE));
  });
  after(() => removeDaemonNamespace(daemon, config, NS, STATE));

  it('200 datagrams from a local process: ignored, logged as logfmt once and then as one count', async () => {
    const ports = await subscriberPorts();
    assert.equal(ports.length, 1, `one subscriber socket in the namespace: ${ports.join(',')}`);
    const send = `const { RawNetlinkSocket } = require(${JSON.stringify(NETLINK_MODULE)});
      const s = new RawNetlinkSocket(0);
      const m = Buffer.alloc(20); m.writeUInt32LE(20, 0); m.writeUInt16LE(24, 4); // RTM_NEWROUTE, no payload
      let left = 200; const next = () => left-- > 0 ? s.send(m, { port: ${ports[0]} }, next) : s.close(); next();`;
    const r = await inNs(NS, process.execPath, ['-e', send]);
    assert.equal(r.code, 0, r.stderr);
    const first = await waitForLine(daemon!, /event=netlink .*only the kernel \(port 0\) is trusted/, 10_000);
    const summary = await waitForLine(daemon!, /event=netlink .*suppressed=/, 15_000);
    assert.equal(parseLine(first).level, 'warn');
    assert.equal(Number(parseLine(summary).suppressed), 199);
    assert.equal(daemon!.lines.filter((l) => /only the kernel/.test(l)).length, 2, 'no line per datagram');
    assert.equal(daemon!.lines.filter((l) => !/^ts=\S+ level=\w+ event=/.test(l)).length, 0, 'every line is logfmt');
    assert.equal(daemon!.child.exitCode, null);
  });
});
