import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expandGlob, isGlob, nameMatcher } from './glob';

test('expandGlob: * and ? within one segment, hidden files, braces, sorted, missing dirs, directories too', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'ulfact-glob-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const rel of ['a/x1.lease', 'a/x2.lease', 'a/.x3.lease', 'a/y.leases', 'a/x1.lease.tmp', 'b/x4.lease', 'b/c/x5.lease']) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), '');
  }
  mkdirSync(path.join(root, 'a/d.lease'));
  const rel = async (pattern: string): Promise<string[]> =>
    (await expandGlob(path.join(root, pattern))).map((p) => path.relative(root, p));
  assert.deepEqual(await rel('*/x?.lease'), ['a/x1.lease', 'a/x2.lease', 'b/x4.lease']);
  assert.deepEqual(await rel('a/*.lease'), ['a/d.lease', 'a/x1.lease', 'a/x2.lease']);
  assert.deepEqual(await rel('a/.*.lease'), ['a/.x3.lease']);
  assert.deepEqual(await rel('a/{y.leases,x2.lease}'), ['a/x2.lease', 'a/y.leases']);
  assert.deepEqual(await rel('a/y.leases'), ['a/y.leases']);
  assert.deepEqual(await rel('a/none'), []);
  assert.deepEqual(await rel('zz/*/x'), []);
  assert.deepEqual(await rel('a/x1.lease/*'), []);
});

test('nameMatcher and isGlob: interface-name patterns as in a shell', () => {
  assert.equal(isGlob('br-*'), true);
  assert.equal(isGlob('veth?'), true);
  assert.equal(isGlob('eth0.101'), false);
  assert.equal(isGlob('/var/lib/dhcp'), false);
  const bridges = nameMatcher('br-*');
  assert.deepEqual(['br-1a2b', 'br-', 'docker0', 'xbr-1'].filter(bridges), ['br-1a2b', 'br-']);
  assert.deepEqual(['eth0.101', 'eth0.102', 'eth0', 'eth01x101'].filter(nameMatcher('eth0.*')), ['eth0.101', 'eth0.102']);
  assert.deepEqual(['wg0', 'wg1', 'wg10'].filter(nameMatcher('wg[0-9]')), ['wg0', 'wg1']);
  assert.deepEqual(['dhclient.eth0.leases', '.hidden.leases'].filter(nameMatcher('*.leases')), ['dhclient.eth0.leases']);
});

test('expandGlob keeps a directory\'s listing while its mtime stays, and lists again once an entry is added or removed', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'ulfact-glob-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'leases');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'a.lease'), '');
  const old = new Date(Date.now() - 60_000);
  utimesSync(dir, old, old); // changed long ago: not "racy"
  const pattern = path.join(dir, '*.lease');
  assert.deepEqual(await expandGlob(pattern), [path.join(dir, 'a.lease')]);
  // Proof that the listing is kept: an entry added behind the mtime's back is not seen...
  writeFileSync(path.join(dir, 'b.lease'), '');
  utimesSync(dir, old, old);
  assert.deepEqual(await expandGlob(pattern), [path.join(dir, 'a.lease')]);
  // ...while a real addition or removal changes the directory's mtime, and the pattern is listed again.
  writeFileSync(path.join(dir, 'c.lease'), '');
  assert.deepEqual(await expandGlob(pattern), ['a.lease', 'b.lease', 'c.lease'].map((f) => path.join(dir, f)));
  rmSync(path.join(dir, 'a.lease'));
  assert.deepEqual(await expandGlob(pattern), ['b.lease', 'c.lease'].map((f) => path.join(dir, f)));
  rmSync(dir, { recursive: true });
  assert.deepEqual(await expandGlob(pattern), [], 'the directory gone');
  // Wildcards or braces outside the last segment are never cached (a brace may hold a slash).
  mkdirSync(path.join(root, 'x'));
  writeFileSync(path.join(root, 'x', 'y.lease'), '');
  assert.deepEqual(await expandGlob(path.join(root, '{x/y,z/w}.lease')), [path.join(root, 'x', 'y.lease')]);
});
