// Issue 12: the Debian package. Builds it from this checkout with scripts/package.sh (what
// `npm run package` runs after the build), then checks it with Debian's own tools: lintian,
// systemd-analyze verify on the packaged unit, dpkg-deb -x and the extracted program run as it is,
// and dpkg installing and purging it in a scratch root (never the host's).
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = path.join(__dirname, '..', '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NEEDS_ROOT = process.getuid?.() === 0 ? false : 'needs root: dpkg installs into a scratch root';

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Every path under `dir`, relative to it, directories with a trailing slash. */
function tree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const p = path.join(rel, e.name);
    if (e.isDirectory()) out.push(`${p}/`, ...tree(dir, p));
    else out.push(p);
  }
  return out;
}

/** ELF e_machine of a file (x86-64 62, aarch64 183, ...). */
function elfMachine(file: string): number {
  const head = readFileSync(file).subarray(0, 20);
  assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF', `${file} is not ELF`);
  return head.readUInt16LE(18);
}

describe('Debian package', () => {
  let deb: string;
  let work: string;
  let x: string; // the package extracted with dpkg-deb -x
  const arch = run('dpkg', ['--print-architecture']).stdout.trim();

  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'uplinkd-deb-test-'));
    const built = run('bash', ['scripts/package.sh']);
    const out = ok(built, 'scripts/package.sh').trimEnd().split('\n');
    deb = out[out.length - 1];
    x = path.join(work, 'x');
    ok(run('dpkg-deb', ['-x', deb, x]), 'dpkg-deb -x');
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is uplinkd_<version>_<arch>.deb with the dependencies it runs on, printed as the last line', () => {
    assert.equal(path.basename(deb), `uplinkd_${VERSION}_${arch}.deb`);
    assert.ok(path.isAbsolute(deb) && existsSync(deb), deb);
    const field = (name: string) => ok(run('dpkg-deb', ['-f', deb, name]), `dpkg-deb -f ${name}`).trim();
    assert.equal(field('Package'), 'uplinkd');
    assert.equal(field('Version'), VERSION);
    assert.equal(field('Architecture'), arch);
    const depends = field('Depends').split(/,\s*/);
    for (const dep of ['nodejs (>= 20)', 'iproute2', 'nftables']) assert.ok(depends.includes(dep), `Depends lacks ${dep}: ${depends}`);
    assert.ok(depends.some((d) => d.startsWith('libc6 ')), 'Depends names libc6 for the native addons (dpkg-shlibdeps)');
    assert.equal(field('Recommends'), 'conntrack');
  });

  it('installs the program, unit, example config (a conffile), man pages, completion, schema and copyright', () => {
    for (const p of [
      'usr/lib/uplinkd/bin/uplinkd', 'usr/lib/uplinkd/dist/src/cli/main.js', 'usr/lib/uplinkd/package.json',
      'lib/systemd/system/uplinkd.service', 'etc/uplinkd/uplinkd.yaml', 'usr/share/man/man8/uplinkd.8.gz',
      'usr/share/man/man5/uplinkd.yaml.5.gz', 'usr/share/bash-completion/completions/uplinkd',
      'usr/share/uplinkd/uplinkd.schema.json', 'usr/share/doc/uplinkd/copyright', 'usr/share/doc/uplinkd/changelog.gz',
    ]) assert.ok(existsSync(path.join(x, p)), `${p} missing`);
    assert.equal(readlinkSync(path.join(x, 'usr/bin/uplinkd')), '../lib/uplinkd/bin/uplinkd');
    ok(run('bash', ['-n', path.join(x, 'usr/share/bash-completion/completions/uplinkd')]), 'bash -n on the completion');
    assert.ok(statSync(path.join(x, 'usr/lib/uplinkd/bin/uplinkd')).mode & 0o111, 'the program is executable');
    assert.match(readFileSync(path.join(x, 'usr/lib/uplinkd/bin/uplinkd'), 'utf8'), /^#!\/usr\/bin\/node\n/);
    assert.deepEqual(readFileSync(path.join(x, 'usr/share/uplinkd/uplinkd.schema.json'), 'utf8'),
      readFileSync(path.join(ROOT, 'src/config/uplinkd.schema.json'), 'utf8'));
    const control = path.join(work, 'control');
    ok(run('dpkg-deb', ['-e', deb, control]), 'dpkg-deb -e');
    assert.equal(readFileSync(path.join(control, 'conffiles'), 'utf8'), '/etc/uplinkd/uplinkd.yaml\n');
    // Nothing enables or starts the service: no systemctl enable, no start.
    for (const script of ['postinst', 'prerm', 'postrm']) {
      const text = readFileSync(path.join(control, script), 'utf8').replace(/^\s*#.*$/gm, '');
      assert.doesNotMatch(text, /systemctl[^\n]*\b(enable|start)\b|deb-systemd-helper[^\n]*\benable\b|deb-systemd-invoke[^\n]*\bstart\b/,
        `${script} enables or starts uplinkd`);
    }
  });

  it('has production dependencies only, no tests, and native code for this machine only', () => {
    const modules = path.join(x, 'usr/lib/uplinkd/node_modules');
    const prod = ok(run('npm', ['ls', '--omit=dev', '--all', '--parseable']), 'npm ls').trim().split('\n').slice(1)
      .map((d) => path.relative(path.join(ROOT, 'node_modules'), d)).sort();
    // A package is a folder with a package.json at node_modules/[@scope/]name(/node_modules/[@scope/]name)*.
    const isPackage = /^(@[^/]+\/)?[^/@]+(\/node_modules\/(@[^/]+\/)?[^/@]+)*$/;
    const shipped = tree(modules).filter((p) => p.endsWith('/')).map((p) => p.slice(0, -1))
      .filter((p) => isPackage.test(p) && existsSync(path.join(modules, p, 'package.json'))).sort();
    assert.deepEqual(shipped, prod);
    for (const dev of ['typescript', 'ajv', '@types/node']) assert.ok(!existsSync(path.join(modules, dev)), `dev dependency ${dev} shipped`);
    const files = tree(path.join(x, 'usr/lib/uplinkd'));
    assert.deepEqual(files.filter((f) => f.endsWith('.test.js') || f.endsWith('.ts') && !f.endsWith('.d.ts')), []);
    // Only the product (dist/src): neither the namespace lab (dist/lab) nor the test doubles (dist/test).
    assert.deepEqual(files.filter((f) => f.startsWith('dist/') && !f.startsWith('dist/src/') && f !== 'dist/'), []);
    const nodeMachine = elfMachine(process.execPath);
    const elves = files.filter((f) => f.endsWith('.node'));
    assert.ok(elves.some((f) => f.endsWith('uplinkd_icmp.node')), 'the ICMP addon is shipped');
    assert.ok(elves.some((f) => f.endsWith('uplinkd_control.node')), 'the control-socket addon is shipped');
    assert.ok(elves.some((f) => f.includes('netlink/')), "netlink's binding is shipped");
    assert.ok(elves.some((f) => f.endsWith('uplinkd_nft.node')), 'the libnftables addon is shipped');
    for (const f of elves) assert.equal(elfMachine(path.join(x, 'usr/lib/uplinkd', f)), nodeMachine, `${f} is for another machine`);
  });

  it('says `uplinkd lab` needs the lab, which the package does not ship', () => {
    const r = run(process.execPath, [path.join(x, 'usr/lib/uplinkd/bin/uplinkd'), 'lab', 'down', '--prefix', 'y7none-']);
    assert.equal(r.status, 2, `exit status ${r.status}:\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /the namespace lab is not installed/);
  });

  it('lintian reports no errors', () => {
    const r = run('lintian', ['--fail-on', 'error', deb]);
    assert.doesNotMatch(r.stdout, /^E: /m, r.stdout);
    assert.equal(r.status, 0, `lintian exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  });

  it('systemd-analyze verify accepts the packaged unit (its ExecStart program is the extracted one)', () => {
    // verify checks that the commands exist and are executable, so the unit's only path of ours,
    // /usr/bin/uplinkd, points into the extracted tree; everything else is the unit as packaged.
    const unit = readFileSync(path.join(x, 'lib/systemd/system/uplinkd.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/bin\/uplinkd run /m);
    assert.match(unit, /^ExecStartPre=\/usr\/bin\/uplinkd check /m);
    assert.doesNotMatch(unit, /\/usr\/local\//);
    const dir = path.join(work, 'verify');
    mkdirSync(dir);
    const copy = path.join(dir, 'uplinkd.service');
    writeFileSync(copy, unit.replaceAll('/usr/bin/uplinkd', path.join(x, 'usr/bin/uplinkd')));
    const env = { ...process.env, MANPATH: path.join(x, 'usr/share/man'), SYSTEMD_LOG_COLOR: '0' };
    const r = run('systemd-analyze', ['verify', '--man=yes', copy], { env });
    assert.equal(r.status, 0, `systemd-analyze verify:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim(), '', `systemd-analyze verify warned:\n${r.stderr}`);
    // The same check fails when the program is missing: it is not a check that cannot fail.
    writeFileSync(copy, unit.replaceAll('/usr/bin/uplinkd', path.join(work, 'missing', 'uplinkd')));
    assert.notEqual(run('systemd-analyze', ['verify', '--man=yes', copy], { env }).status, 0);
  });

  it('the extracted program runs: --help, --version, check on the example config, and loads its native code', () => {
    const bin = path.join(x, 'usr/bin/uplinkd');
    const env = { PATH: process.env.PATH, LANG: 'C.UTF-8' };
    const help = run(bin, ['--help'], { cwd: work, env });
    assert.match(ok(help, 'uplinkd --help'), /^usage: uplinkd <command>/);
    assert.equal(ok(run(bin, ['--version'], { cwd: work, env }), 'uplinkd --version').trim(), `uplinkd ${VERSION}`);
    const example = path.join(x, 'etc/uplinkd/uplinkd.yaml');
    assert.match(ok(run(bin, ['check', '-c', example], { cwd: work, env }), 'uplinkd check'), / ok \(2 uplinks, default balance\)/);
    const bad = path.join(work, 'bad.yaml');
    writeFileSync(bad, readFileSync(example, 'utf8').replace('gateway: 198.51.100.1', 'gateway: 198.51.100.999'));
    const rejected = run(bin, ['check', '-c', bad], { cwd: work, env });
    assert.equal(rejected.status, 2);
    assert.match(rejected.stderr, /bad\.yaml:\d+:\d+: uplinks\[0\]\.gateway: /);

    // The ICMP addon, the netlink socket-option addon, the control-socket addon and netlink's prebuilt
    // binding load from the package, with nothing from the checkout.
    const lib = path.join(x, 'usr/lib/uplinkd');
    const probe = `
      const { loadIcmpAddon } = require(${JSON.stringify(path.join(lib, 'dist/src/health/native.js'))});
      const icmp = loadIcmpAddon();
      if (process.getuid() === 0) icmp.close(icmp.open('127.0.0.1', null, () => {})); // a raw socket needs CAP_NET_RAW
      require(${JSON.stringify(path.join(lib, 'node_modules/netlink'))});
      // Port 0 names no socket of ours: the call fails, but only after the addon has loaded.
      require(${JSON.stringify(path.join(lib, 'dist/src/netlink/sockopt.js'))}).enableNetlinkFeatures(0);
      // The CLI's control-socket client: 'blocking' once its addon loaded.
      if (require(${JSON.stringify(path.join(lib, 'dist/src/daemon/control-client.js'))}).defaultTransport() !== 'blocking') throw new Error('no control addon');
      const nft = require(${JSON.stringify(path.join(lib, 'dist/src/nft/libnftables.js'))}).loadLibnftables();
      if (nft.failure) throw new Error(nft.failure);
      console.log(JSON.stringify(Object.keys(require.cache)));`;
    const loaded = JSON.parse(ok(run(process.execPath, ['-e', probe], { cwd: work, env }), 'loading the native code')) as string[];
    const natives = loaded.filter((f) => f.endsWith('.node'));
    assert.equal(natives.length, 5, `expected the five addons (ours and netlink's), loaded: ${natives}`);
    for (const f of loaded) assert.ok(f.startsWith(`${lib}/`), `${f} was loaded from outside the package`);
  });

  it("every module the shipped code requires is in the package or is node's own", () => {
    const lib = path.join(x, 'usr/lib/uplinkd');
    const js = tree(path.join(lib, 'dist')).filter((f) => f.endsWith('.js')).map((f) => path.join(lib, 'dist', f));
    assert.ok(js.length > 50);
    for (const file of js) {
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          assert.ok(existsSync(`${target}.js`) || existsSync(path.join(target, 'index.js')) || existsSync(target),
            `${path.relative(lib, file)} requires ${spec}, which is not in the package`);
        } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
          assert.ok(existsSync(path.join(lib, 'node_modules', name)), `${path.relative(lib, file)} requires ${spec}, not shipped`);
        }
      }
    }
  });

  it('man pages render without groff warnings and document every command of --help', () => {
    const help = ok(run(path.join(x, 'usr/bin/uplinkd'), ['--help'], { cwd: work }), 'uplinkd --help');
    const commands = [...help.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]);
    assert.ok(commands.length >= 9, `commands in --help: ${commands}`);
    const env = { ...process.env, LC_ALL: 'C.UTF-8', MANWIDTH: '80', MAN_KEEP_FORMATTING: '' };
    const texts: Record<string, string> = {};
    for (const page of ['man8/uplinkd.8.gz', 'man5/uplinkd.yaml.5.gz']) {
      const file = path.join(x, 'usr/share/man', page);
      const r = run('man', ['--warnings', '-E', 'UTF-8', '-l', file], { env });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', `${page}: groff warnings:\n${r.stderr}`);
      texts[page] = r.stdout;
    }
    for (const c of commands) assert.match(texts['man8/uplinkd.8.gz'], new RegExp(`^ {7}${c}\\b`, 'm'), `uplinkd(8) does not document '${c}'`);
    for (const key of ['uplinks', 'table_base', 'resilient', 'pinning.mark_mask', 'http.listen', 'gateway', 'monitor'])
      assert.match(texts['man5/uplinkd.yaml.5.gz'], new RegExp(`^ {7}${key.replace('.', '\\.')}\\b`, 'm'), `uplinkd.yaml(5) lacks ${key}`);
  });

  it('dpkg installs it without enabling or starting anything, and purge leaves only what the admin wrote', { skip: NEEDS_ROOT }, () => {
    // A scratch root; maintainer scripts run outside a chroot with DPKG_ROOT set (as Debian's
    // bootstrap tools do), so they must act on that root and never on the host.
    const r = path.join(work, 'root');
    mkdirSync(path.join(r, 'var/lib/dpkg/info'), { recursive: true });
    mkdirSync(path.join(r, 'var/lib/dpkg/updates'));
    writeFileSync(path.join(r, 'var/lib/dpkg/status'), '');
    const dpkg = (...args: string[]) => ok(run('dpkg', [`--root=${r}`, '--force-script-chrootless', '--force-depends', '--log=/dev/null', ...args]),
      `dpkg ${args.join(' ')}`);
    const files = () => tree(r).filter((p) => !p.startsWith('var/lib/dpkg/')).sort();

    dpkg('-i', deb);
    const installed = files();
    assert.ok(installed.includes('lib/systemd/system/uplinkd.service'));
    assert.deepEqual(installed.filter((p) => p.startsWith('etc/systemd') || p.startsWith('run/')), [], 'something was enabled or started');
    assert.equal(ok(run(path.join(r, 'usr/bin/uplinkd'), ['--version'], { cwd: work }), 'installed uplinkd --version').trim(), `uplinkd ${VERSION}`);

    // What an admin does: edits the example, adds a hook, enables the unit; and what apply writes.
    const conf = path.join(r, 'etc/uplinkd/uplinkd.yaml');
    writeFileSync(conf, `${readFileSync(conf, 'utf8')}# edited\n`);
    mkdirSync(path.join(r, 'etc/uplinkd/hooks.d'));
    writeFileSync(path.join(r, 'etc/uplinkd/hooks.d/10-log'), '#!/bin/sh\nlogger "$UPLINKD_UPLINK $UPLINKD_STATE"\n');
    mkdirSync(path.join(r, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
    symlinkSync('/lib/systemd/system/uplinkd.service', path.join(r, 'etc/systemd/system/multi-user.target.wants/uplinkd.service'));
    for (const [dir, text] of [['rt_tables.d', '1001 isp1\n'], ['rt_protos.d', '117 uplinkd\n']]) {
      mkdirSync(path.join(r, 'etc/iproute2', dir), { recursive: true });
      writeFileSync(path.join(r, 'etc/iproute2', dir, 'uplinkd.conf'), text);
    }
    writeFileSync(path.join(r, 'etc/iproute2/rt_tables.d/admin.conf'), '200 mine\n');

    dpkg('-r', 'uplinkd');
    const removed = files();
    assert.ok(!existsSync(path.join(r, 'usr/lib/uplinkd')), 'remove leaves the program');
    assert.ok(removed.includes('etc/uplinkd/uplinkd.yaml'), 'remove keeps the configuration');

    dpkg('--purge', 'uplinkd');
    const left = files().filter((p) => !p.endsWith('/'));
    assert.deepEqual(left, ['etc/iproute2/rt_tables.d/admin.conf', 'etc/uplinkd/hooks.d/10-log']);
  });
});
