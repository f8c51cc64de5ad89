import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuTicksOf, memoryOf } from './idle';

test('memoryOf reads VmRSS and VmHWM in MB', () => {
  const status = 'Name:\tnode\nVmHWM:\t   70000 kB\nVmRSS:\t   50000 kB\nThreads:\t7\n';
  assert.deepEqual(memoryOf(status), { rssMb: 51.2, hwmMb: 71.68 });
  assert.throws(() => memoryOf('Name:\tnode\n'), /VmRSS|VmHWM/);
});

test('cpuTicksOf adds utime and stime, also when the command name holds spaces and parentheses', () => {
  // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 7 0 999 0 0';
  assert.equal(cpuTicksOf(stat), 168);
});
