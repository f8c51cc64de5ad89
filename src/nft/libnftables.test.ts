// The libnftables runner: the command-line translation and the queue/timeout logic on a fake addon,
// then the real addon and libnftables in a network namespace this test makes (root; skipped
// otherwise), compared with the nft program on the same commands.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { libraryRunner, loadLibnftables, nftCommand } from './libnftables';

test('nft command lines become one libnftables command: -j sets JSON, -f - takes the script, words are joined as nft joins them', () => {
  assert.deepEqual(nftCommand(['-j', 'list', 'table', 'ip', 'uplinkd']), { command: 'list table ip uplinkd', json: true });
  assert.deepEqual(nftCommand(['list', 'ruleset']), { command: 'list ruleset', json: false });
  assert.deepEqual(nftCommand(['-f', '-'], 'table ip uplinkd\ndelete table ip uplinkd\n'), { command: 'table ip uplinkd\ndelete table ip uplinkd\n', json: false });
  assert.deepEqual(nftCommand(['--json', '--file', '-'], 'list ruleset'), { command: 'list ruleset', json: true });
  assert.equal(nftCommand(['-f', '/etc/nftables.conf']), undefined);
  assert.equal(nftCommand(['-a', 'list', 'ruleset']), undefined);
  assert.equal(nftCommand(['-f', '-', 'extra']), undefined);
});

test('library runner: one command at a time in call order, an unsupported option and a failing addon are errors, never rejections', async () => {
  const started: string[] = [];
  const finish: (() => void)[] = [];
  const run = libraryRunner({
    nftRun: (command) => {
      started.push(command);
      if (command === 'boom') return Promise.reject(new Error('nft_ctx_new failed'));
      return new Promise((resolve) => finish.push(() => resolve({ code: 0, stdout: `out of ${command}`, stderr: '' })));
    },
  });
  const a = run(['list', 'ruleset']);
  const b = run(['-j', 'list', 'tables']);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['list ruleset'], 'the second waits for the first');
  finish.shift()!();
  assert.deepEqual(await a, { code: 0, stdout: 'out of list ruleset', stderr: '' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['list ruleset', 'list tables']);
  finish.shift()!();
  assert.equal((await b).stdout, 'out of list tables');
  const bad = await run(['-c', '-f', '-'], 'flush ruleset');
  assert.equal(bad.code, null);
  assert.equal(bad.error?.code, 'EINVAL');
  const boom = await run(['boom']);
  assert.equal(boom.error?.code, 'EIO');
  assert.match(boom.error!.message, /nft_ctx_new failed/);
  assert.deepEqual(started, ['list ruleset', 'list tables', 'boom'], 'the unsupported command never reached the library');
});

test('library runner: a command unanswered within the timeout is ETIMEDOUT; the next one still runs after it', async () => {
  let release: () => void = () => undefined;
  const started: string[] = [];
  const run = libraryRunner({
    nftRun: (command) => {
      started.push(command);
      if (command === 'stuck') return new Promise((resolve) => (release = () => resolve({ code: 0, stdout: '', stderr: '' })));
      return Promise.resolve({ code: 1, stdout: '', stderr: 'Error: x' });
    },
  }, 50);
  const stuck = await run(['stuck']);
  assert.equal(stuck.code, null);
  assert.equal(stuck.error?.code, 'ETIMEDOUT');
  const next = run(['next']);
  release();
  assert.deepEqual(await next, { code: 1, stdout: '', stderr: 'Error: x' });
  assert.deepEqual(started, ['stuck', 'next']);
});

test('no addon file: a failure naming the build step, nothing thrown', () => {
  const r = loadLibnftables(['/nonexistent/uplinkd_nft.node']);
  assert.ok('failure' in r);
  assert.match(r.failure, /uplinkd_nft\.node is not built \(npm run build:native\)/);
});

test('an addon file that does not load: a failure with the loader\'s text', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'uplinkd-nft-'));
  try {
    const file = path.join(dir, 'uplinkd_nft.node');
    writeFileSync(file, 'not a shared object');
    const r = loadLibnftables([file]);
    assert.ok('failure' in r);
    assert.match(r.failure, /^uplinkd_nft\.node: .*(invalid ELF header|too short)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no libnftables: the library\'s absence is the failure; runNft runs the nft program and says so once on stderr', () => {
  const child = `
    const { loadLibnftables } = require(${JSON.stringify(path.join(__dirname, 'libnftables.js'))});
    const { runNft } = require(${JSON.stringify(path.join(__dirname, 'nft.js'))});
    (async () => {
      const load = loadLibnftables(undefined, '/nonexistent/libnftables.so.1');
      const first = await runNft(['--version']);
      const second = await runNft(['--version']);
      process.stdout.write(JSON.stringify({ load, first, second }));
    })();`;
  const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', env: { ...process.env, UPLINKD_LIBNFTABLES: '/nonexistent/libnftables.so.1' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { load: { failure: string }; first: { code: number | null; stdout: string; error?: unknown }; second: { stdout: string } };
  assert.match(out.load.failure, /^libnftables: \/nonexistent\/libnftables\.so\.1: cannot open shared object file/);
  const program = spawnSync('nft', ['--version'], { encoding: 'utf8' });
  if (program.error) assert.equal(out.first.code, null, 'no nft program either: an error, not a rejection');
  else assert.deepEqual([out.first.stdout, out.second.stdout], [program.stdout, program.stdout]);
  assert.deepEqual(r.stderr.match(/^uplinkd: nft: .*$/gm), [
    'uplinkd: nft: libnftables: /nonexistent/libnftables.so.1: cannot open shared object file: No such file or directory: running the nft program for each command instead',
  ]);
});

const NS = `a9${process.pid % 1000}-nft`;
const rootSkip = process.getuid?.() !== 0 ? 'needs root (a network namespace)' : 'failure' in loadLibnftables() ? 'the addon or libnftables does not load' : false;

/** Runs `commands` ([args, input]) in NS through the library runner and through the nft program; prints both. */
const CHILD = `
const { loadLibnftables } = require(${JSON.stringify(path.join(__dirname, 'libnftables.js'))});
const { spawnNft, readPinning } = require(${JSON.stringify(path.join(__dirname, 'nft.js'))});
(async () => {
  const lib = loadLibnftables().run;
  const out = [];
  for (const [args, input] of JSON.parse(process.argv[1])) {
    const viaLib = await lib(args, input);
    const viaProgram = args[0] === '-f' ? undefined : await spawnNft(args, input);
    out.push({ viaLib, viaProgram, pinning: await readPinning(lib) });
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

interface Step {
  viaLib: { code: number | null; stdout: string; stderr: string };
  viaProgram?: { code: number | null; stdout: string; stderr: string };
  pinning: { kind: string; rules?: number };
}

function inNs(commands: [string[], string?][]): Step[] {
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', CHILD, JSON.stringify(commands)], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Step[];
}

describe('the real libnftables in a namespace', { skip: rootSkip }, () => {
  before(() => {
    spawnSync('ip', ['netns', 'del', NS]);
    execFileSync('ip', ['netns', 'add', NS]);
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', NS]);
  });

  test('a table that does not exist, then exists, then is deleted; a syntax error: codes and texts as the nft program gives them', () => {
    const table = 'table ip uplinkd {\n  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n    meta mark 0x10 counter comment "uplinkd pin #0123456789abcdef"\n  }\n}\n';
    const [missing, installed, listed, syntax, deleted, gone] = inNs([
      [['-j', 'list', 'table', 'ip', 'uplinkd']],
      [['-f', '-'], table],
      [['-j', 'list', 'table', 'ip', 'uplinkd']],
      [['list', 'tabel', 'ip', 'uplinkd']],
      [['-f', '-'], 'table ip uplinkd\ndelete table ip uplinkd\n'],
      [['list', 'table', 'ip', 'uplinkd']],
    ]);
    assert.equal(missing!.viaLib.code, 1);
    assert.match(missing!.viaLib.stderr, /Error: No such file or directory/);
    assert.deepEqual(missing!.viaLib, missing!.viaProgram);
    assert.deepEqual(missing!.pinning, { kind: 'absent' });

    assert.deepEqual(installed!.viaLib, { code: 0, stdout: '', stderr: '' });
    const { effect, ...pinning } = installed!.pinning as { effect?: string };
    assert.deepEqual(pinning, { kind: 'present', rules: 1, hash: '0123456789abcdef', layout: 'chain pre filter prerouting -150 accept' });
    assert.match(effect ?? '', /^[0-9a-f]{16}$/);

    assert.equal(listed!.viaLib.code, 0);
    const rules = (JSON.parse(listed!.viaLib.stdout) as { nftables: { rule?: { comment?: string } }[] }).nftables.filter((i) => i.rule);
    assert.deepEqual(rules.map((r) => r.rule!.comment), ['uplinkd pin #0123456789abcdef']);
    assert.deepEqual(listed!.viaLib, listed!.viaProgram);

    assert.equal(syntax!.viaLib.code, 1);
    assert.match(syntax!.viaLib.stderr, /^Error: syntax error, unexpected string\nlist tabel ip uplinkd\n\s+\^+\n$/);
    assert.deepEqual(syntax!.viaLib, syntax!.viaProgram);

    assert.equal(deleted!.viaLib.code, 0);
    assert.deepEqual(deleted!.pinning, { kind: 'absent' });
    assert.equal(gone!.viaLib.code, 1);
    assert.deepEqual(gone!.viaLib, gone!.viaProgram);
  });
});
