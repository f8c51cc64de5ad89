import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, formatLine, parseLine } from './log';

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
