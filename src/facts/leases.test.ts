import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { detectLeaseFormat, readInterfaceNames, readLeases } from './leases';

function dhcpMessage(yiaddr: number[], router: number[], seconds: number): Buffer {
  const bytes = Buffer.alloc(256);
  bytes.set([2, 1, 6, 0], 0);
  bytes.set(yiaddr, 16);
  bytes.set([99, 130, 83, 99], 236);
  bytes.set([53, 1, 5, 3, 4, ...router, 51, 4], 240);
  bytes.writeUInt32BE(seconds, 251);
  bytes[255] = 255;
  return bytes;
}

/** A temp tree laid out like a machine with every client. */
function machine(): { root: string; mtime: Date } {
  const root = mkdtempSync(path.join(tmpdir(), 'ulfact-unit-'));
  const mtime = new Date(Date.UTC(2026, 0, 1));
  const put = (rel: string, content: string | Buffer): void => {
    const p = path.join(root, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
    utimesSync(p, mtime, mtime);
  };
  put('var/lib/dhcp/dhclient.eth0.leases', 'lease {\n  interface "eth0";\n  fixed-address 10.0.0.2;\n  option routers 10.0.0.1;\n  expire never;\n}\n');
  put('var/lib/dhcp/dhclient.broken.leases', 'lease {\n  interface "eth9";\n');
  put('var/lib/dhcp/dhclient6.eth0.leases', 'default-duid "\\000\\001";\n');
  put('var/lib/dhcpcd/eth1.lease', dhcpMessage([10, 1, 0, 2], [10, 1, 0, 1], 3600));
  put('var/lib/dhcpcd/eth1.lease6', Buffer.from([1, 2, 3]));
  put('var/lib/dhcpcd/duid', '00:01:00:01\n');
  put('run/systemd/netif/leases/4', 'ADDRESS=10.4.0.2\nROUTER=10.4.0.1\nLIFETIME=60\n');
  put('run/systemd/netif/leases/99', 'ADDRESS=10.99.0.2\n');
  put('run/udhcpc/eth5.lease', 'interface=eth5\nip=10.5.0.2\nrouter=10.5.0.1\nlease=10\n');
  mkdirSync(path.join(root, 'run/udhcpc/dir.lease'));
  return { root, mtime };
}

test('readLeases reads every format and skips bad files with a warning', async (t) => {
  const { root, mtime } = machine();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const warnings: string[] = [];
  const globs = [
    'var/lib/dhcp/dhclient*.leases',
    'var/lib/dhcpcd/*.lease*',
    'var/lib/dhcpcd/*',
    'run/systemd/netif/leases/*',
    'run/udhcpc/*.lease',
    'nowhere/*/x',
  ].map((g) => path.join(root, g));
  const leases = await readLeases(globs, {
    warn: (file, message) => warnings.push(`${path.relative(root, file)}: ${message}`),
    interfaceNames: new Map([[4, 'eth4']]),
  });
  const t0 = mtime.getTime();
  assert.deepEqual(
    leases.map((l) => [l.client, l.interface, l.address, l.gateway, l.expiresAt]),
    [
      ['networkd', 'eth4', '10.4.0.2', '10.4.0.1', t0 + 60_000],
      ['udhcpc', 'eth5', '10.5.0.2', '10.5.0.1', t0 + 10_000],
      ['dhclient', 'eth0', '10.0.0.2', '10.0.0.1', undefined],
      ['dhcpcd', 'eth1', '10.1.0.2', '10.1.0.1', t0 + 3_600_000],
    ],
  );
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings.join('\n'), /dhclient\.broken\.leases: unterminated block/);
  assert.match(warnings.join('\n'), /leases\/99: no interface with index 99/);
});

test('detectLeaseFormat by content, then path', () => {
  const enc = (s: string): Uint8Array => Buffer.from(s);
  assert.equal(detectLeaseFormat('/x/any', enc('# c\nlease {\n')), 'dhclient');
  assert.equal(detectLeaseFormat('/x/any', dhcpMessage([1, 2, 3, 4], [1, 2, 3, 1], 1)), 'dhcpcd');
  assert.equal(detectLeaseFormat('/x/eth0.lease6', dhcpMessage([1, 2, 3, 4], [1, 2, 3, 1], 1)), undefined);
  assert.equal(detectLeaseFormat('/x/2', enc('# private\nADDRESS=1.2.3.4\n')), 'networkd');
  assert.equal(detectLeaseFormat('/run/systemd/netif/leases/2', enc('{"Address":"1.2.3.4"}')), 'networkd');
  assert.equal(detectLeaseFormat('/x/2', enc('{"Address":"1.2.3.4"}')), undefined);
  assert.equal(detectLeaseFormat('/x/e.lease', enc('interface=e\nip=1.2.3.4\n')), 'udhcpc');
  assert.equal(detectLeaseFormat('/x/duid', enc('00:01:00:01\n')), undefined);
});

test('readInterfaceNames maps ifindex files', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'ulfact-sys-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [name, index] of [['lo', '1'], ['wan0', '7\n']]) {
    mkdirSync(path.join(root, name));
    writeFileSync(path.join(root, name, 'ifindex'), index);
  }
  mkdirSync(path.join(root, 'bonding_masters_dir'));
  assert.deepEqual([...(await readInterfaceNames(root))].sort(), [[1, 'lo'], [7, 'wan0']]);
  assert.deepEqual([...(await readInterfaceNames(path.join(root, 'missing')))], []);
});
