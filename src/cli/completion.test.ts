// The bash completion (packaging/uplinkd.bash-completion) offers every command and option the CLI
// parses (COMMANDS): a command added to the CLI without its completion fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { COMMANDS } from './main';

const COMPLETION = readFileSync(path.join(__dirname, '..', '..', '..', 'packaging', 'uplinkd.bash-completion'), 'utf8');

test('the bash completion offers every command and every option of COMMANDS', () => {
  const commands = /local commands='([^']*)'/.exec(COMPLETION)?.[1]?.split(' ') ?? [];
  for (const [name, spec] of Object.entries(COMMANDS)) {
    if (name.startsWith('-')) continue;
    const [word, sub] = name.split(' ');
    assert.ok(commands.includes(word!), `command '${word}' is not offered`);
    if (sub) assert.match(COMPLETION, new RegExp(`compgen -W '[^']*\\b${sub}\\b`), `'${name}' is not offered`);
    for (const option of [...(spec.valued ?? []), ...(spec.flags ?? [])]) {
      assert.match(COMPLETION, new RegExp(`opts='[^']*--${option}\\b`), `option --${option} of '${name}' is not offered`);
    }
  }
});
