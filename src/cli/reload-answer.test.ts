import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT } from '../errors';
import { reloadReport } from './reload-answer';

const cycle = { ran: true, applied: 3, failed: 0, deferred: 0, collisions: 0 };

test('a reload whose first cycle applied everything exits 0 and says how many changes', () => {
  assert.deepEqual(reloadReport({ notes: [], cycle }), { line: 'uplinkd: configuration reloaded and applied (3 changes)', warnings: [], exit: EXIT.ok });
  const held = reloadReport({ notes: ['paths.control_socket changed'], cycle: { ...cycle, applied: 1, deferred: 2, collisions: 1 } });
  assert.equal(held.exit, EXIT.ok);
  assert.equal(held.line, 'uplinkd: configuration reloaded and applied (1 change)');
  assert.equal(held.warnings.length, 3);
  assert.match(held.warnings[1]!, /2 changes held back/);
  assert.match(held.warnings[2]!, /1 foreign object holds places of the plan/);
});

test('a reload whose first cycle failed, or some of whose changes failed, or after which no cycle ran, exits 1 and says so', () => {
  const failed = reloadReport({ notes: [], cycle: { ...cycle, applied: 2, failed: 1 } });
  assert.equal(failed.exit, EXIT.failure);
  assert.match(failed.line, /^uplinkd: configuration reloaded, but 1 of 3 changes failed in the first cycle with it; the daemon runs the new configuration/);
  const error = reloadReport({ notes: [], cycle: { ...cycle, applied: 0, error: 'netlink: ENOBUFS' } });
  assert.equal(error.exit, EXIT.failure);
  assert.match(error.line, /the first cycle with it failed: netlink: ENOBUFS/);
  assert.equal(reloadReport({ cycle: { ...cycle, ran: false } }).exit, EXIT.failure);
});

test('an answer without a cycle (an older daemon) still reports the reload, without claiming it was applied', () => {
  const r = reloadReport({ notes: ['x'] });
  assert.equal(r.exit, EXIT.ok);
  assert.doesNotMatch(r.line, /applied/);
  assert.deepEqual(r.warnings, ['x']);
});
