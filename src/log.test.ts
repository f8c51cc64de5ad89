import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, escapeControl, formatLine, parseLine, rateLimited, type LogFields } from './log';

test('one logfmt line per event: quoted values round-trip', () => {
  const line = formatLine(Date.UTC(2024, 0, 1), 'info', 'apply', {
    change: 'ip rule add from 203.0.113.120/32 lookup 1002 priority 10100 protocol 117',
    cause: 'address "203.0.113.120/24" added on if2\nsecond line',
    count: 3,
    skipped: undefined,
  });
  assert.ok(line.startsWith('ts=2024-01-01T00:00:00.000Z level=info event=apply change="ip rule add'));
  assert.ok(!line.includes('\n'), 'a single line');
  assert.ok(!line.includes('skipped'));
  const fields = parseLine(line);
  assert.equal(fields.change, 'ip rule add from 203.0.113.120/32 lookup 1002 priority 10100 protocol 117');
  assert.equal(fields.cause, 'address "203.0.113.120/24" added on if2\nsecond line');
  assert.equal(fields.count, '3');
});

test('levels below the minimum are dropped', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', sink: (l) => lines.push(l), now: () => 0 });
  log.info('apply', { change: 'x' });
  log.debug('in-sync');
  log.warn('conflict', { object: 'ip rule add ...' });
  log.error('reload-rejected');
  assert.deepEqual(lines.map((l) => parseLine(l).event), ['conflict', 'reload-rejected']);
  assert.equal(parseLine(lines[0]!).level, 'warn');
});

/** Every character a terminal acts on: C0, DEL, C1, separators, bidi controls, BOM. */
const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)),
  '\u200e', '\u200f', '\u2028', '\u2029', '\u202a', '\u202e', '\u2066', '\u2069', '\ufeff',
];
const UNSAFE_RE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;

test('a logfmt line never carries a control or formatting character, and parseLine gets every one back', () => {
  // What `head -c 300 /dev/urandom > uplinkd.yaml` puts into a reload-rejected error, and every control besides.
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const hostile = `${bytes.toString('latin1')}${CONTROLS.join('')}\x1b[2J\x1b]0;title\x07 back\\slash "quote" \\x41`;
  const line = formatLine(0, 'error', 'reload-rejected', { error: hostile, file: '/etc/up\rlinkd.yaml' });
  assert.doesNotMatch(line, UNSAFE_RE, JSON.stringify(line));
  assert.match(line, /error="\\x00\\x01/);
  assert.match(line, /\\x1b\[2J/);
  assert.match(line, /\\u202e/);
  const fields = parseLine(line);
  assert.equal(fields.error, hostile);
  assert.equal(fields.file, '/etc/up\rlinkd.yaml');
});

test('escapeControl escapes every control or formatting character, keeping only the ones asked for', () => {
  const text = `a\nb${CONTROLS.join('')}c`;
  assert.doesNotMatch(escapeControl(text), UNSAFE_RE);
  const kept = escapeControl(text, '\n');
  assert.equal(kept.split('\n').length, 3, 'the two newlines stay');
  assert.doesNotMatch(kept.replace(/\n/g, ''), UNSAFE_RE);
  assert.equal(escapeControl('\x1b[31mred\u009b'), '\\x1b[31mred\\x9b');
  assert.equal(escapeControl('plain text, ünïcödé'), 'plain text, ünïcödé');
});

test('rateLimited: the first line goes out, the flood behind it is one summary line with the count', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const lines: LogFields[] = [];
  const warn = rateLimited((f) => lines.push(f), 5_000);
  for (let i = 1; i <= 83; i++) warn({ msg: `overrun ${i}` });
  assert.deepEqual(lines, [{ msg: 'overrun 1' }]);
  t.mock.timers.tick(5_000);
  assert.deepEqual(lines, [{ msg: 'overrun 1' }, { msg: 'overrun 83', suppressed: 82 }]);
  t.mock.timers.tick(5_000); // a quiet window: nothing more
  assert.equal(lines.length, 2);
  warn({ msg: 'later' }); // after a quiet window the next goes out at once
  assert.deepEqual(lines.at(-1), { msg: 'later' });
  t.mock.timers.tick(5_000);
  assert.equal(lines.length, 3);
});
