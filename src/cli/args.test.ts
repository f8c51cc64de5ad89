import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { COMMANDS, main, parseCommandLine } from './main';

function usageError(argv: string[], ...mentions: string[]): void {
  assert.throws(() => parseCommandLine(argv), (e: unknown) => {
    assert.ok(e instanceof UplinkdError && e.code === 'usage', `${argv.join(' ')}: ${String(e)}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `${argv.join(' ')}: '${e.message}' should name ${m}`);
    return true;
  });
}

test('each command takes its own options and values', () => {
  assert.deepEqual(parseCommandLine(['check', '-c', 'a.yaml']).options, { config: 'a.yaml' });
  assert.deepEqual(parseCommandLine(['plan', '--config=a.yaml', '--format', 'ip']).options, { config: 'a.yaml', format: 'ip' });
  assert.deepEqual(parseCommandLine(['status', '--json']).options, { json: true });
  assert.deepEqual(parseCommandLine(['run', '-c', 'a.yaml', '--cleanup']).options, { config: 'a.yaml', cleanup: true });
  assert.deepEqual(parseCommandLine(['hook', '--cause', 'bound eth0']).options, { cause: 'bound eth0' });
  const up = parseCommandLine(['lab', 'up', '--vlan', '--prefix', 'x-', '--isp1', 'dhcp', '--isp2', 'static', '--client', 'dhcpcd']);
  assert.equal(up.command, 'lab up');
  assert.deepEqual(up.options, { vlan: true, prefix: 'x-', isp1: 'dhcp', isp2: 'static', client: 'dhcpcd' });
  assert.deepEqual(parseCommandLine(['lab', 'up', '--kernel', 'full']).options, { kernel: 'full' });
  assert.deepEqual(parseCommandLine(['lab', 'down', '--prefix', 'x-']).options, { prefix: 'x-' });
});

test('an option another command takes, or none does, is a usage error naming it and the command', () => {
  usageError(['check', '-c', 'good.yaml', '--frob'], '--frob', "'check'", 'usage: uplinkd check');
  usageError(['plan', '-c', 'good.yaml', '--bogus'], '--bogus', "'plan'");
  usageError(['status', '--format', 'ip'], '--format', "'status'");
  usageError(['check', '--json'], '--json', "'check'");
  usageError(['apply', '--cleanup'], '--cleanup', "'apply'");
  usageError(['down', '--format=ip'], '--format', "'down'");
  usageError(['run', '--cause', 'x'], '--cause', "'run'");
  usageError(['reload', '--vlan'], '--vlan', "'reload'");
  usageError(['hook', '--json'], '--json', "'hook'");
  usageError(['lab', 'down', '--vlan'], '--vlan', "'lab down'");
  usageError(['lab', 'up', '-c', 'a.yaml'], '-c', "'lab up'");
  usageError(['lab', 'up', '--cleanup'], '--cleanup', "'lab up'");
  usageError(['--version', '--json'], '--json', "'--version'");
  usageError(['help', '--frob'], '--frob', "'help'");
  // Only -c is short; a single-dash long name is not an alias of the long option.
  usageError(['status', '-json'], '-json', "'status'");
  usageError(['check', '-x'], '-x');
});

test('a stray argument is a usage error naming it and the command', () => {
  usageError(['check', 'good.yaml'], "'good.yaml'", "'check'", '-c good.yaml');
  usageError(['plan', '-c', 'a.yaml', 'extra'], "'extra'", "'plan'");
  usageError(['status', '--json', 'now'], "'now'", "'status'");
  usageError(['run', 'x'], "'x'", "'run'");
  usageError(['lab', 'up', 'more'], "'more'", "'lab up'");
  usageError(['lab', 'down', 'x-'], "'x-'", "'lab down'");
  usageError(['--version', 'x'], "'x'");
  usageError(['check', '--', 'good.yaml'], "'good.yaml'");
});

test('a missing value, a value on a flag, an unknown command or lab action', () => {
  usageError(['plan', '--format'], '--format needs a value', "'plan'");
  usageError(['check', '-c'], '-c needs a value');
  usageError(['status', '--json=yes'], '--json takes no value');
  usageError(['plan', '--format', '-x'], '--format needs a value', '--format=VALUE');
  usageError(['check', '--config'], '--config needs a value');
  usageError(['frob'], "unknown command 'frob'");
  usageError([], 'a command is needed', 'usage: uplinkd <command>');
  usageError(['lab'], 'lab needs up or down');
  usageError(['lab', 'sideways'], "unknown lab action 'sideways'");
});

test('every command of the usage text has a spec, and every spec is in the usage text', async (t) => {
  const out = t.mock.method(console, 'log', () => {});
  assert.equal(await main(['help']), 0);
  const usage = String(out.mock.calls[0]!.arguments[0]);
  const listed = [...usage.matchAll(/^ {2}(\w+(?: up| down)?) /gm)].map((m) => m[1]!);
  for (const c of listed) assert.ok(COMMANDS[c], `no spec for '${c}'`);
  for (const [name, spec] of Object.entries(COMMANDS)) {
    if (name.startsWith('-') || name === 'help') continue;
    assert.ok(listed.includes(name), `'${name}' is not in the usage text`);
    for (const o of [...(spec.valued ?? []), ...(spec.flags ?? [])]) {
      assert.ok(spec.usage.includes(o === 'config' ? '-c FILE' : `--${o}`), `${name}: --${o} is not in its usage line`);
    }
  }
});

test('main: usage errors exit 2 before the configuration is read; exec keeps what follows --', async (t) => {
  const err = t.mock.method(console, 'error', () => {});
  assert.equal(await main(['check', '-c', '/nonexistent/good.yaml', '--frob']), 2);
  assert.match(String(err.mock.calls.at(-1)!.arguments[0]), /unknown option '--frob' for 'check'/);
  assert.equal(await main(['check', 'good.yaml']), 2);
  assert.match(String(err.mock.calls.at(-1)!.arguments[0]), /unexpected argument 'good.yaml' for 'check'/);
  assert.equal(await main(['exec', '-c', '/nonexistent/a.yaml', 'wan', '--frob', '--', 'true']), 2);
  assert.match(String(err.mock.calls.at(-1)!.arguments[0]), /unknown option '--frob' for 'exec'/);
  assert.equal(await main(['exec', '-c', '/nonexistent/a.yaml', 'wan', 'lan', '--', 'true']), 2);
  assert.match(String(err.mock.calls.at(-1)!.arguments[0]), /unexpected argument 'lan' for 'exec'/);
  // Options after -- belong to the command: parsing passes them on, and the missing file is what fails.
  await main(['exec', '-c', '/nonexistent/a.yaml', 'wan', '--', 'curl', '--frob', '-c', 'x']);
  assert.match(String(err.mock.calls.at(-1)!.arguments[0]), /\/nonexistent\/a\.yaml/);
  assert.doesNotMatch(String(err.mock.calls.at(-1)!.arguments[0]), /--frob|unknown option/);
});
