// `npm run bench [-- --only NAME[,NAME]] [--quick]`: runs the benchmarks in network namespaces
// of their own (root) and rewrites their blocks in docs/benchmarks.md. Timings are reported,
// never asserted.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { describeMachine } from './machine';
import { cleanup, lockRun, removeLeftovers, unlockRun } from './netns';
import { BENCHMARKS, type Benchmark } from './registry';
import { mergeReport, type Section } from './report';

const DOC = path.resolve(__dirname, '..', '..', 'docs', 'benchmarks.md');

const HEADER = `# Benchmarks

Produced by \`npm run bench\` (as root; \`-- --only NAME\` runs one benchmark, \`-- --quick\` is a smoke run with
fewer iterations). Each benchmark builds its own network namespaces (\`ulb-*\`), runs uplinkd and its measuring
process inside them, and removes them afterwards; nothing in the host namespace is touched and no packet leaves
the namespaces (\`guest-soak\` builds its lab inside a user-mode Linux guest, docs/guest-lab.md). Each section below says when, on what machine and how its numbers were measured; a run rewrites
only the sections of the benchmarks it ran and drops text outside them: explanations and before/after comparisons from
the development runs are in docs/benchmark-notes.md. Targets come from the issues (3: sections 1–4; 7: sections 2, 3, 5, 6; 4 and 10:
health); they are reported, not asserted.`;

export interface Args {
  only: string[];
  quick: boolean;
}

export function parseBenchArgs(argv: readonly string[], known: readonly string[]): Args {
  const args: Args = { only: [], quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!v) throw new UplinkdError('usage', '--only needs a benchmark name');
      args.only.push(...v.split(',').filter(Boolean));
    } else throw new UplinkdError('usage', `unknown argument '${a}' (use --only NAME, --quick)`);
  }
  for (const n of args.only) if (!known.includes(n)) throw new UplinkdError('usage', `no benchmark '${n}' (there are: ${known.join(', ')})`);
  return args;
}

/** When, where and how busy the machine was (other work on it shows in the tails). */
function stamp(section: Section, quick: boolean, loadBefore: number): Section {
  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const load = `1-minute load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after`;
  const mode = quick ? ' **Quick run (`--quick`): few iterations, a smoke test, not the reference numbers.**' : '';
  return { ...section, body: `Measured ${when} on ${describeMachine()}; ${load}.${mode}\n\n${section.body.trim()}` };
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), BENCHMARKS.map((b) => b.name));
  if (process.getuid?.() !== 0) throw new UplinkdError('usage', 'the benchmarks need root: they build network namespaces');
  const selected: Benchmark[] = args.only.length ? BENCHMARKS.filter((b) => args.only.includes(b.name)) : [...BENCHMARKS];
  const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
  await lockRun();
  const left = await removeLeftovers();
  if (left.length) progress(`removed namespaces of an earlier run: ${left.join(', ')}`);

  const order = BENCHMARKS.map((b) => b.name);
  const done: Section[] = [];
  let failed = 0;
  for (const b of selected) {
    progress(`${b.name}: running${args.quick ? ' (quick)' : ''}`);
    const started = Date.now();
    const loadBefore = os.loadavg()[0];
    try {
      const section = stamp(await b.run({ quick: args.quick, progress: (l) => progress(`${b.name}: ${l}`) }), args.quick, loadBefore);
      done.push(section);
      // Written at once: a long run stopped half-way keeps what it measured.
      const existing = await fs.readFile(DOC, 'utf8').catch(() => undefined);
      await fs.writeFile(DOC, mergeReport(HEADER, existing, [section], order));
      progress(`${b.name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s, written to ${DOC}`);
    } catch (err) {
      failed++;
      progress(`${b.name}: FAILED (its section in ${DOC} is left as it was): ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await cleanup();
    }
  }
  await unlockRun();
  for (const s of done) process.stdout.write(`\n## ${s.title}\n\n${s.body}\n`);
  return failed ? 1 : 0;
}

if (require.main === module) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`bench: ${sig}, removing the benchmark namespaces\n`);
      // This run holds the lock: every ulb- namespace is its own, also those of lab-based modules.
      void removeLeftovers().then(unlockRun).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
  main().then(
    (code) => {
      process.exitCode = code;
    },
    async (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      await cleanup();
      await unlockRun();
      process.exitCode = err instanceof UplinkdError && err.code === 'usage' ? 2 : 1;
    },
  );
}
