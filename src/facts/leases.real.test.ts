// Real DHCP clients against dnsmasq in two network namespaces joined by a veth pair;
// readLeases, run inside the client namespace like the daemon would, must report the
// address and router the client actually got. Needs root; skips otherwise.
//
// Isolation from the host: every client runs under `ip netns exec` (own network
// namespace, /etc/netns/<ns>/resolv.conf over /etc/resolv.conf) and `unshare --mount
// --uts` with a tmpfs over /run and its state directories bound into our temp dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import { udhcpcLeaseScript } from './udhcpc';

const PREFIX = `ulfact-${process.pid}`;
const SERVER_NS = `${PREFIX}-srv`;
const CLIENT_NS = `${PREFIX}-cli`;
const ROUTER = '192.0.2.1';
const IFACE = 'wan0';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function has(binary: string): boolean {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/lib/systemd'].some((d) => existsSync(path.join(d, binary)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts `script` (sh) in the client namespace inside a private mount+UTS namespace, as its own process group. */
function startInClientNs(script: string, log: string): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    return spawn('ip', ['netns', 'exec', CLIENT_NS, 'unshare', '--mount', '--uts', 'sh', '-c', script], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the whole group is gone
  }
}

/** SIGTERM to the child's process group, SIGKILL after 3 s; helpers left in the group are killed too. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    killGroup(child.pid, 'SIGTERM');
    await Promise.race([exited, sleep(3000)]);
  }
  killGroup(child.pid, 'SIGKILL');
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** Kills whatever still runs in a namespace of ours (dhcpcd's privsep helpers, say), then deletes it. */
function deleteNamespace(ns: string): void {
  try {
    for (const pid of run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  } catch {
    // namespace already gone
  }
  try {
    run('ip', ['netns', 'del', ns]);
  } catch {
    // namespace already gone
  }
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
}

/** readLeases run by node inside the client namespace (sysfs there maps its ifindexes). */
function readLeasesInClientNs(globs: string[]): Lease[] {
  const code = `require(${JSON.stringify(path.join(__dirname, 'leases.js'))})
    .readLeases(${JSON.stringify(globs)}, { warn: (f, m) => console.error(f + ': ' + m) })
    .then((l) => process.stdout.write(JSON.stringify(l)))`;
  return JSON.parse(run('ip', ['netns', 'exec', CLIENT_NS, process.execPath, '-e', code])) as Lease[];
}

function clientAddress(): string | undefined {
  const out = run('ip', ['-n', CLIENT_NS, '-4', '-o', 'addr', 'show', 'dev', IFACE]);
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1];
}

async function waitForLease(globs: string[], log: string, timeoutMs = 20_000): Promise<Lease[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leases = readLeasesInClientNs(globs).filter((l) => l.address !== undefined);
    if (leases.length > 0 && clientAddress() === leases[0].address) return leases;
    if (Date.now() > deadline) {
      throw new Error(
        `no lease within ${timeoutMs} ms; leases: ${JSON.stringify(leases)}, address: ${clientAddress()}\n${tail(log)}`,
      );
    }
    await sleep(250);
  }
}

/** Processes whose command line names `text` (our temp dir is unique to this run). */
function processesMentioning(text: string): string[] {
  try {
    return run('pgrep', ['-a', '-f', text]).trim().split('\n').filter((l) => !l.includes('pgrep'));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function resetClientInterface(): void {
  run('ip', ['-n', CLIENT_NS, 'addr', 'flush', 'dev', IFACE]);
  run('ip', ['-n', CLIENT_NS, 'route', 'flush', 'table', 'main']);
}

/**
 * Shell prefix: private /run, and a check that /etc/resolv.conf is the namespace's own file
 * (same inode as /etc/netns/<ns>/resolv.conf) before any client may write it.
 */
const ISOLATE =
  'set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /run; ' +
  `[ "$(stat -c %d:%i /etc/resolv.conf)" = "$(stat -c %d:%i /etc/netns/${CLIENT_NS}/resolv.conf)" ] || ` +
  '{ echo "/etc/resolv.conf is not the namespace\'s own" >&2; exit 97; };';

const root = process.getuid?.() === 0;
const missing = ['ip', 'unshare', 'dnsmasq', 'dhclient', 'dhcpcd', 'udhcpc'].filter((b) => !has(b));
const skip = !root ? 'needs root (network namespaces)' : missing.length > 0 ? `missing ${missing.join(', ')}` : false;

test('real DHCP clients: readLeases reports what they leased', { skip, timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), `${PREFIX}-`));
  chmodSync(dir, 0o755); // networkd drops to systemd-network and must reach its lease directory
  const children: ChildProcess[] = [];
  try {
    for (const ns of [SERVER_NS, CLIENT_NS]) {
      mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${ns}/resolv.conf`, `# ulfact test namespace ${ns}\n`);
      run('ip', ['netns', 'add', ns]);
    }
    run('ip', ['link', 'add', 's0', 'netns', SERVER_NS, 'type', 'veth', 'peer', 'name', IFACE, 'netns', CLIENT_NS]);
    run('ip', ['-n', SERVER_NS, 'addr', 'add', `${ROUTER}/24`, 'dev', 's0']);
    run('ip', ['-n', SERVER_NS, 'link', 'set', 's0', 'up']);
    run('ip', ['-n', CLIENT_NS, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', CLIENT_NS, 'link', 'set', IFACE, 'up']);

    const dnsmasq = spawn(
      'ip',
      ['netns', 'exec', SERVER_NS, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=s0',
        '--bind-interfaces', '--dhcp-authoritative', '--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,600',
        `--dhcp-option=option:router,${ROUTER}`, `--dhcp-leasefile=${dir}/dnsmasq.leases`, `--pid-file=${dir}/dnsmasq.pid`],
      { detached: true, stdio: 'ignore' },
    );
    children.push(dnsmasq);

    const check = (leases: Lease[], client: Lease['client']): void => {
      assert.equal(leases.length, 1, JSON.stringify(leases));
      const [lease] = leases;
      assert.equal(lease.client, client);
      assert.equal(lease.interface, IFACE);
      assert.equal(lease.address, clientAddress());
      assert.match(lease.address ?? '', /^192\.0\.2\.(1[0-4][0-9]|150)$/);
      assert.equal(lease.gateway, ROUTER);
      const now = Date.now();
      assert.ok(lease.expiresAt !== undefined && lease.expiresAt > now && lease.expiresAt <= now + 601_000, String(lease.expiresAt));
      t.diagnostic(`${client}: ${JSON.stringify(lease)}`);
      t.diagnostic(`${client} routes in main: ${run('ip', ['-n', CLIENT_NS, '-4', 'route', 'show', 'table', 'main']).trim().replace(/\n/g, ' | ')}`);
      t.diagnostic(`${client} address: ${run('ip', ['-n', CLIENT_NS, '-4', '-o', 'addr', 'show', 'dev', IFACE]).trim()}`);
    };

    await t.test('dhclient with dhclient-script', async () => {
      const lf = `${dir}/dhclient.leases`;
      const child = startInClientNs(
        `${ISOLATE} exec dhclient -4 -d -lf ${lf} -pf ${dir}/dhclient.pid -sf /sbin/dhclient-script ${IFACE}`,
        `${dir}/dhclient.log`,
      );
      children.push(child);
      try {
        check(await waitForLease([`${dir}/dhclient*.leases`], `${dir}/dhclient.log`), 'dhclient');
      } finally {
        await stop(child);
        resetClientInterface();
      }
    });

    await t.test('dhcpcd (one-shot, IPv4)', async () => {
      const lib = `${dir}/dhcpcd-lib`;
      mkdirSync(lib);
      const child = startInClientNs(
        `${ISOLATE} mount --bind ${lib} /var/lib/dhcpcd; exec dhcpcd -f /dev/null -c /bin/true -1 -4 -B ${IFACE}`,
        `${dir}/dhcpcd.log`,
      );
      children.push(child);
      try {
        check(await waitForLease([`${lib}/*.lease`], `${dir}/dhcpcd.log`), 'dhcpcd');
      } finally {
        await stop(child);
        resetClientInterface();
      }
    });

    await t.test('udhcpc with the uplinkd lease script', async () => {
      const script = `${dir}/udhcpc.script`;
      writeFileSync(script, udhcpcLeaseScript(`${dir}/udhcpc`, '/etc/udhcpc/default.script'), { mode: 0o755 });
      const child = startInClientNs(`${ISOLATE} exec udhcpc -f -i ${IFACE} -s ${script}`, `${dir}/udhcpc.log`);
      children.push(child);
      try {
        check(await waitForLease([`${dir}/udhcpc/*.lease`], `${dir}/udhcpc.log`), 'udhcpc');
      } finally {
        await stop(child);
        resetClientInterface();
      }
    });

    await t.test('systemd-networkd', { skip: has('systemd-networkd') ? false : 'no /lib/systemd/systemd-networkd' }, async () => {
      const netif = `${dir}/netif`;
      for (const sub of ['', 'leases', 'links', 'lldp']) {
        mkdirSync(path.join(netif, sub), { recursive: true });
        chownSync(path.join(netif, sub), Number(run('id', ['-u', 'systemd-network'])), Number(run('id', ['-g', 'systemd-network'])));
      }
      writeFileSync(`${dir}/50-${IFACE}.network`, `[Match]\nName=${IFACE}\n\n[Network]\nDHCP=ipv4\n`);
      // networkd waits for udev unless /sys is read-only; the read-only bind is private to this mount namespace.
      const child = startInClientNs(
        `${ISOLATE} mount -o remount,bind,ro /sys; mkdir -p /run/systemd/network /run/systemd/netif; ` +
          `cp ${dir}/50-${IFACE}.network /run/systemd/network/; mount --bind ${netif} /run/systemd/netif; ` +
          'exec /lib/systemd/systemd-networkd',
        `${dir}/networkd.log`,
      );
      children.push(child);
      try {
        check(await waitForLease([`${netif}/leases/*`], `${dir}/networkd.log`), 'networkd');
      } finally {
        await stop(child);
        resetClientInterface();
      }
    });
  } finally {
    for (const child of children) await stop(child);
    deleteNamespace(CLIENT_NS);
    deleteNamespace(SERVER_NS);
    rmSync(dir, { recursive: true, force: true });
    const left = run('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(PREFIX));
    assert.deepEqual(left, [], 'namespaces left behind');
    assert.deepEqual(processesMentioning(dir), [], 'processes left behind');
  }
});
