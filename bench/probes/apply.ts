// Runs inside a benchmark router namespace with N static uplinks and nothing of uplinkd's in
// the kernel. Times a full apply from empty three (four) ways, tearing down between runs:
// in-process applyOnce(), `uplinkd apply` as a new process, and the same change as a shell
// script of `ip` commands, one process each (plus the same commands in one `ip -batch`).
// After every apply it checks that uplinkd sees nothing left to change. Prints one JSON line.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { downOnce, applyOnce, planOnce } from '../../src/cli/oneshot';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { UplinkdError } from '../../src/errors';

export interface ApplyArgs {
  config: string;
  reps: number;
  uplinkdBin: string;
}

export interface ApplyResult {
  changes: number;
  /** ms per repetition */
  inProcess: number[];
  cli: number[];
  script: number[];
  batch: number[];
}

const ignore = () => undefined;

function runTimed(cmd: string, args: string[], input?: string): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new UplinkdError('lab', `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

async function expectConverged(config: Config, after: string): Promise<void> {
  const left = (await planOnce(config, ignore)).changes.length;
  if (left !== 0) throw new UplinkdError('lab', `after ${after}, uplinkd still wants ${left} changes`);
}

async function expectEmpty(config: Config): Promise<void> {
  const r = await downOnce(config);
  if (r.failed.length) throw new UplinkdError('lab', `down failed: ${r.failed[0].error.message}`);
}

async function main(args: ApplyArgs): Promise<ApplyResult> {
  const config = await loadConfig(args.config);
  await expectEmpty(config);
  const plan = spawnSync(process.execPath, [args.uplinkdBin, 'plan', '-c', args.config, '--format', 'ip'], { encoding: 'utf8' });
  if (plan.status !== 0) throw new UplinkdError('lab', `uplinkd plan failed: ${plan.stderr}`);
  const commands = plan.stdout.split('\n').filter((l) => l.startsWith('ip '));
  const script = path.join(path.dirname(args.config), 'apply.sh');
  writeFileSync(script, commands.join('\n') + '\n');
  const batchInput = commands.map((c) => c.slice('ip '.length)).join('\n') + '\n';

  const out: ApplyResult = { changes: commands.length, inProcess: [], cli: [], script: [], batch: [] };
  for (let rep = 0; rep < args.reps; rep++) {
    const t = performance.now();
    const r = await applyOnce(config, ignore);
    out.inProcess.push(performance.now() - t);
    if (r.failed.length || r.applied.length !== commands.length)
      throw new UplinkdError('lab', `applyOnce applied ${r.applied.length} of ${commands.length}, ${r.failed.length} failed`);
    await expectConverged(config, 'applyOnce');
    await expectEmpty(config);

    out.cli.push(runTimed(process.execPath, [args.uplinkdBin, 'apply', '-c', args.config]));
    await expectConverged(config, 'uplinkd apply');
    await expectEmpty(config);

    out.script.push(runTimed('sh', ['-e', script]));
    await expectConverged(config, 'the ip script');
    await expectEmpty(config);

    out.batch.push(runTimed('ip', ['-batch', '-'], batchInput));
    await expectConverged(config, 'ip -batch');
    await expectEmpty(config);
  }
  return out;
}

main(JSON.parse(process.argv[2] ?? '{}') as ApplyArgs).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`apply probe: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
