// Issue 8, "marks that are a good neighbour": another program's marked traffic passes flow
// pinning unharmed. The router gets Tailscale's rules as tailscaled installs them: its own
// packets carry the bypass mark 0x80000 (SO_MARK) and `fwmark 0x80000/0xff0000` sends them to
// the ISP, while everything else goes into the VPN (`lookup 52`, a veth to a "VPN" namespace).
// 20 datagrams of one socket (one conntrack entry, so pinning sees every one of them) must all
// reach the internet host. The control case pins with the old default mask 0x00ff0000: the
// pin rewrites the bypass bit and the datagrams after the first go into the VPN; `plan` warns.
// And a LAN host's connection that another program marks (a bit outside the mask) stays unpinned:
// its replies arriving on the uplink must not write uplinkd's bits into its conntrack mark.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { renderLabConfig } from '../../lab/config';
import { inNs, ipIn, run, startInNs } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { apply, down, freshLab, NEEDS_ROOT } from './support';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

const PREFIX = `u8m${process.pid % 1000}-`;
const VPN_NS = `${PREFIX}vpn`;
const PORT = 7552;
const BYPASS = 0x80000;

/** Counts UDP datagrams on PORT and prints the count on each one. */
const COUNTER = `
const s = require('dgram').createSocket('udp4');
let n = 0;
s.on('message', () => console.log('got ' + ++n));
s.bind(${PORT}, '0.0.0.0', () => console.log('listening'));
`;

/** 20 datagrams from one socket carrying SO_MARK (as tailscaled marks its own packets). */
const SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, int(sys.argv[2], 0))
for i in range(20):
    s.sendto(b'datagram %d' % i, (sys.argv[1], ${PORT}))
    time.sleep(0.02)
`;

const ECHO_PORT = 7553;
/** Echoes every UDP datagram back to its sender. */
const ECHO_SERVER = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(${ECHO_PORT}, '0.0.0.0', () => console.log('listening'));
`;
/** 5 datagrams from one socket (source port argv[2]) to the echo server, counting the replies. */
const ECHO_CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[2])))
s.settimeout(1.0)
n = 0
for i in range(5):
    s.sendto(b'ping %d' % i, (sys.argv[1], ${ECHO_PORT}))
    try:
        s.recvfrom(100)
        n += 1
    except socket.timeout:
        pass
print('replies %d' % n)
`;

class Counter {
  private n = 0;
  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.n += [...d.matchAll(/got \d+/g)].length;
    });
  }
  take(): number {
    const n = this.n;
    this.n = 0;
    return n;
  }
}

describe('marks of other programs (issue 8)', { skip: NEEDS_ROOT, timeout: 180_000 }, () => {
  let lab: LabInfo;
  let inet: Counter;
  let vpn: Counter;
  const children: ChildProcess[] = [];

  before(async () => {
    lab = await freshLab({ prefix: PREFIX });
    // The "VPN": a veth from the router to a namespace that also answers for the internet host's address.
    await run('ip', ['netns', 'del', VPN_NS], { allowFail: true });
    await run('ip', ['netns', 'add', VPN_NS]);
    await ipIn(lab.ns.router, ['link', 'add', 'ts0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', VPN_NS]);
    await ipIn(lab.ns.router, ['link', 'set', 'ts0', 'up']);
    await ipIn(VPN_NS, ['link', 'set', 'lo', 'up']);
    await ipIn(VPN_NS, ['link', 'set', 'v1', 'up']);
    await ipIn(VPN_NS, ['addr', 'add', `${lab.internetHost}/32`, 'dev', 'v1']);
    const isp1 = lab.uplinks.find((u) => u.name === 'isp1')!;
    // tailscaled's rules: bypass-marked packets to the ISP (table 53 here), the rest into the VPN.
    await ipIn(lab.ns.router, ['route', 'add', 'default', 'via', isp1.gateway, 'dev', isp1.interface, 'table', '53']);
    await ipIn(lab.ns.router, ['route', 'add', 'default', 'dev', 'ts0', 'table', '52']);
    await ipIn(lab.ns.router, ['rule', 'add', 'priority', '5210', 'fwmark', '0x80000/0xff0000', 'lookup', '53']);
    await ipIn(lab.ns.router, ['rule', 'add', 'priority', '5270', 'lookup', '52']);
    const a = await startInNs(lab.ns.inet, process.execPath, ['-e', COUNTER], /listening/);
    const b = await startInNs(VPN_NS, process.execPath, ['-e', COUNTER], /listening/);
    children.push(a.child, b.child);
    inet = new Counter(a.child);
    vpn = new Counter(b.child);
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (lab) await labDown(PREFIX);
    await run('ip', ['netns', 'del', VPN_NS], { allowFail: true });
  });

  /** Sends the 20 marked datagrams from the router and returns how many reached each side. */
  async function send(): Promise<{ inet: number; vpn: number }> {
    inet.take();
    vpn.take();
    await inNs(lab.ns.router, 'python3', ['-c', SENDER, lab.internetHost, `0x${BYPASS.toString(16)}`]);
    await new Promise((r) => setTimeout(r, 500));
    return { inet: inet.take(), vpn: vpn.take() };
  }

  it('with the default settings all 20 marked datagrams leave where the foreign rule sends them', async () => {
    assert.ok((await apply(lab)) > 0);
    const nft = await inNs(lab.ns.router, 'nft', ['list', 'table', 'ip', 'uplinkd']);
    assert.match(nft.stdout, /mark mask 0x7f000000/);
    assert.deepEqual(await send(), { inet: 20, vpn: 0 });
    const plan = await uplinkd(lab.ns.router, ['plan', '-c', lab.configPath]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.doesNotMatch(`${plan.stdout}\n${plan.stderr}`, /overlaps flow pinning's mark mask/);
    await down(lab);
  });

  it('a LAN connection another program marks stays unpinned, also once its replies arrive on the uplink', async () => {
    assert.ok((await apply(lab)) > 0);
    // Without the "VPN" for this one: the LAN host's traffic goes out through the uplinks.
    await ipIn(lab.ns.router, ['rule', 'del', 'priority', '5270']);
    const echo = await startInNs(lab.ns.inet, process.execPath, ['-e', ECHO_SERVER], /listening/);
    children.push(echo.child);
    const conntrackMarks = async (): Promise<number[]> => {
      const r = await inNs(lab.ns.router, 'conntrack', ['-L', '-p', 'udp', '--dport', String(ECHO_PORT)], { allowFail: true });
      return [...r.stdout.matchAll(/mark=(\d+)/g)].map((m) => Number(m[1]));
    };
    const exchange = async (sport: number): Promise<void> => {
      const r = await inNs(lab.ns.lan, 'python3', ['-c', ECHO_CLIENT, lab.internetHost, String(sport)]);
      assert.match(r.stdout, /replies 5/, `the exchange from port ${sport} must work: ${r.stdout} ${r.stderr}`);
    };
    try {
      // Control: an unmarked LAN connection is pinned (its conntrack mark holds an uplink's mark).
      await exchange(40001);
      const pinned = await conntrackMarks();
      assert.ok(pinned.length === 1 && (pinned[0]! & 0x7f000000) !== 0, `unmarked connection pinned: ${pinned}`);
      await inNs(lab.ns.router, 'conntrack', ['-D', '-p', 'udp', '--dport', String(ECHO_PORT)], { allowFail: true });
      // Another program marks the LAN host's datagrams with a bit outside uplinkd's mask.
      await inNs(lab.ns.router, 'nft', ['-f', '-'], { input: `table ip foreignmark {\n\tchain pre {\n\t\ttype filter hook prerouting priority -200; policy accept;\n`
        + `\t\tip saddr ${lab.lan.hostAddress} udp dport ${ECHO_PORT} meta mark set 0x1\n\t}\n}\n` });
      await exchange(40002);
      assert.deepEqual(await conntrackMarks(), [0], 'the replies arriving on the uplink did not pin the marked connection');
    } finally {
      await inNs(lab.ns.router, 'nft', ['delete', 'table', 'ip', 'foreignmark'], { allowFail: true });
      await ipIn(lab.ns.router, ['rule', 'add', 'priority', '5270', 'lookup', '52']);
      echo.child.kill('SIGKILL');
      await down(lab);
    }
  });

  it('control: with the mask on Tailscale\'s bits the pin rewrites them and plan says what to change', async () => {
    const file = path.join(lab.stateDir, 'tailscale-mask.yaml');
    await fs.writeFile(file, renderLabConfig(lab, { extra: 'pinning:\n  mark_mask: 0x00ff0000\n' }));
    const plan = await uplinkd(lab.ns.router, ['plan', '-c', file]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(`${plan.stdout}\n${plan.stderr}`,
      /ip rule 5210: fwmark 0x80000\/0xff0000 lookup 53 uses mark bits 0xff0000 \(value 0x80000\), which overlaps flow pinning's mark mask 0x00ff0000 in 0x00ff0000: set pinning\.mark_mask to 0x7f000000/);
    assert.ok((await apply(lab, file)) > 0);
    const got = await send();
    // The first datagram leaves unpinned; once pinned, the rest lose the bypass bit and go into the VPN.
    assert.ok(got.inet < 20 && got.vpn > 0 && got.inet + got.vpn === 20, `the control case must show the harm: ${JSON.stringify(got)}`);
    await down(lab, file);
  });
});
