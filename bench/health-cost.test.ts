import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuTicks } from './health-cost';

test('utime + stime from /proc/PID/stat, also when the command name holds spaces and parentheses', () => {
  const tail = 'S 1 2 3 0 -1 4194560 5 0 0 0 123 45 0 0 20 0 11 0 100 0 0';
  assert.equal(cpuTicks(`4242 (node) ${tail}`), 168);
  assert.equal(cpuTicks(`4242 (a (b) c) ${tail}`), 168);
});
