// The layering of src/ (docs/design.md, "Layers"): each folder imports only from folders listed before it
// (plus errors.ts and log.ts); nothing in the product imports the test doubles (test/support) or the lab (lab/),
// except the CLI's dynamic import of the lab; a unit test may import test/support modules whose own imports of
// src/ stay at or below its folder. Checked on the real sources, and on planted violations to show it can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/** Bottom to top. Level 0 are the files directly in src/; every other entry is a folder under src/. */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'log.ts'],
  ['model'],
  ['system'],
  ['netlink', 'config'],
  ['facts', 'kernel'],
  ['nft', 'health'],
  ['plan'],
  ['reconcile'],
  ['engine'],
  ['render'],
  ['daemon'],
  ['cli'],
];

/** The product's only way into the lab: `uplinkd lab …` loads it lazily (src/cli/main.ts). */
const LAB_LOADER = 'src/cli/main.ts';

const ROOT = path.join(__dirname, '..', '..');

interface Import {
  spec: string;
  dynamic: boolean;
  line: number;
}

/** Every module specifier a file names: import/export declarations, `import()`, `require()`, `import x = require()`. */
function importsOf(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, dynamic: boolean): void => {
    if (spec && ts.isStringLiteralLike(spec)) {
      out.push({ spec: spec.text, dynamic, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, false);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression, false);
    else if (ts.isCallExpression(node)) {
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, node.arguments[0], true);
      else if (ts.isIdentifier(node.expression) && node.expression.text === 'require') add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The layer unit of a repository path under src/: its folder, or the file name for files directly in src/. */
function unitOf(file: string): string | undefined {
  const parts = file.split('/');
  if (parts[0] !== 'src') return undefined;
  if (parts.length === 2) return parts[1]!.replace(/\.test\.ts$/, '.ts');
  return parts[1];
}

function levelOf(unit: string): number | undefined {
  if (unit.endsWith('.ts')) return 0;
  const i = LAYERS.findIndex((l) => l.includes(unit));
  return i < 0 ? undefined : i;
}

/** A source tree: repository-relative path (with '/') -> text. */
type Sources = ReadonlyMap<string, string>;

function resolve(from: string, spec: string, sources: Sources): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const c of [base + '.ts', base.replace(/\.js$/, '.ts'), base + '/index.ts']) if (sources.has(c)) return c;
  return base;
}

/** The src/ units a test/support module reaches, through other test/support modules too. */
function supportReach(file: string, sources: Sources, seen = new Set<string>()): Set<string> {
  const units = new Set<string>();
  if (seen.has(file)) return units;
  seen.add(file);
  for (const imp of importsOf(file, sources.get(file) ?? '')) {
    if (!imp.spec.startsWith('.')) continue;
    const target = resolve(file, imp.spec, sources);
    const unit = unitOf(target);
    if (unit !== undefined) units.add(unit);
    else if (target.startsWith('test/support/')) for (const u of supportReach(target, sources, seen)) units.add(u);
  }
  return units;
}

/**
 * Checks every file under src/ in `sources` against LAYERS. Returns one line per violation:
 * "file:line imports spec: reason". Errors and log are importable from everywhere.
 */
function layerViolations(sources: Sources): string[] {
  const out: string[] = [];
  for (const [file, text] of sources) {
    const unit = unitOf(file);
    if (unit === undefined || !file.endsWith('.ts')) continue;
    const level = levelOf(unit);
    if (level === undefined) {
      out.push(`${file}: src/${unit} is not in the layer table (src/layers.test.ts LAYERS)`);
      continue;
    }
    const isTest = file.endsWith('.test.ts');
    for (const imp of importsOf(file, text)) {
      if (!imp.spec.startsWith('.')) continue;
      const target = resolve(file, imp.spec, sources);
      const where = `${file}:${imp.line} imports '${imp.spec}'`;
      const targetUnit = unitOf(target);
      if (targetUnit !== undefined) {
        if (targetUnit === unit || targetUnit === 'errors.ts' || targetUnit === 'log.ts') continue;
        const targetLevel = levelOf(targetUnit);
        if (targetLevel === undefined) out.push(`${where}: src/${targetUnit} is not in the layer table`);
        else if (targetLevel >= level) {
          out.push(`${where}: ${unit} (level ${level}) may not import ${targetUnit} (level ${targetLevel}), only folders below it`);
        }
      } else if (target.startsWith('lab/')) {
        if (!(file === LAB_LOADER && imp.dynamic)) out.push(`${where}: the product may not import the lab (only ${LAB_LOADER}, dynamically)`);
      } else if (target.startsWith('test/support/') && isTest) {
        for (const u of supportReach(target, sources)) {
          const l = levelOf(u);
          if (u !== unit && u !== 'errors.ts' && u !== 'log.ts' && (l === undefined || l >= level)) {
            out.push(`${where}: that test double reaches src/${u}, at or above ${unit} (level ${level})`);
          }
        }
      } else {
        out.push(`${where}: src/ may not import ${target}${isTest ? '' : ' (only unit tests may import test/support)'}`);
      }
    }
  }
  return out.sort();
}

function readTree(dir: string, sources: Map<string, string>): void {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'build') readTree(rel, sources);
    } else if (e.name.endsWith('.ts')) sources.set(rel, fs.readFileSync(path.join(ROOT, rel), 'utf8'));
  }
}

/** The "Layers" table of docs/design.md: level -> the folders it lists, in order. */
function designLayers(): string[][] {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'design.md'), 'utf8');
  const section = /^## Layers\n([\s\S]*?)(?=^## )/m.exec(doc);
  assert.ok(section, 'docs/design.md has a "## Layers" section');
  const rows: string[][] = [];
  for (const line of section[1]!.split('\n')) {
    const m = /^\| (\d+) \| ([^|]+) \|/.exec(line);
    if (!m) continue;
    assert.equal(Number(m[1]), rows.length, `docs/design.md Layers: levels in order (${line})`);
    rows.push([...m[2]!.matchAll(/`src\/([^`]+?)\/?`/g)].map((x) => x[1]!));
  }
  return rows;
}

test('every import under src/ goes to a folder below its own; the product imports neither test doubles nor the lab', () => {
  const sources = new Map<string, string>();
  for (const dir of ['src', 'test/support']) readTree(dir, sources);
  assert.deepEqual(layerViolations(sources), []);
});

test('every folder under src/ is in the layer table, and docs/design.md shows the same table', () => {
  const folders = fs.readdirSync(path.join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  assert.deepEqual(LAYERS.slice(1).flat().sort(), folders);
  assert.deepEqual(designLayers(), LAYERS.map((l) => [...l]));
});

test('planted violations are found, with file, line and import', () => {
  const sources = new Map<string, string>([
    ['src/model/types.ts', 'export type A = 1;\n'],
    ['src/plan/planner.ts', "import type { A } from '../model/types';\nimport { diff } from '../reconcile/diff';\n"],
    ['src/reconcile/diff.ts', "import { plan } from '../plan/planner';\nexport const diff = 1;\n"],
    ['src/config/load.ts', "export { MAX } from '../netlink/rule';\n"],
    ['src/netlink/rule.ts', 'export const MAX = 1;\n'],
    ['src/kernel/port.ts', "const x = require('../../test/support/fake-port');\n"],
    ['src/kernel/port.test.ts', "import { FakePort } from '../../test/support/fake-port';\n"],
    ['src/nft/nft.test.ts', "import { FakePort } from '../../test/support/fake-port';\n"],
    ['src/daemon/run.ts', "const lab = import('../../lab/lab');\n"],
    ['src/cli/main.ts', "import { labUp } from '../../lab/lab';\nconst l = import('../../lab/lab');\n"],
    ['src/widgets/w.ts', 'export {};\n'],
    ['test/support/fake-port.ts', "import type { A } from '../../src/model/types';\nimport { reconcile } from '../../src/reconcile/reconcile';\n"],
  ]);
  assert.deepEqual(layerViolations(sources), [
    "src/cli/main.ts:1 imports '../../lab/lab': the product may not import the lab (only src/cli/main.ts, dynamically)",
    "src/config/load.ts:1 imports '../netlink/rule': config (level 3) may not import netlink (level 3), only folders below it",
    "src/daemon/run.ts:1 imports '../../lab/lab': the product may not import the lab (only src/cli/main.ts, dynamically)",
    "src/kernel/port.test.ts:1 imports '../../test/support/fake-port': that test double reaches src/reconcile, at or above kernel (level 4)",
    "src/kernel/port.ts:1 imports '../../test/support/fake-port': src/ may not import test/support/fake-port.ts (only unit tests may import test/support)",
    "src/nft/nft.test.ts:1 imports '../../test/support/fake-port': that test double reaches src/reconcile, at or above nft (level 5)",
    "src/plan/planner.ts:2 imports '../reconcile/diff': plan (level 6) may not import reconcile (level 7), only folders below it",
    'src/widgets/w.ts: src/widgets is not in the layer table (src/layers.test.ts LAYERS)',
  ]);
});
