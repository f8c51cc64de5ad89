// The machine a benchmark ran on, written beside its numbers.
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

export interface Machine {
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
}

export function machine(): Machine {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1].trim() ?? cpu;
  } catch {
    // not Linux: keep "unknown"
  }
  return { nproc: os.availableParallelism(), cpu, kernel: `${os.type()} ${os.release()}`, node: process.version };
}

export function describeMachine(m: Machine = machine()): string {
  return `${m.nproc} CPUs (${m.cpu}), ${m.kernel}, Node ${m.node}`;
}
