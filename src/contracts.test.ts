// Contract checks over the product sources (src/**/*.ts, tests excluded), read with the TypeScript compiler API:
// 1. every exported function, class, public method or accessor of an exported class and exported const function
//    carries a JSDoc comment;
// 2. a number whose name says it is a duration or a size (`timeout`, `interval`, `delay`, `size`, ...) states its
//    unit, in its name (`timeoutMs`, `sizeBytes`) or in its doc comment ("milliseconds", "s", "bytes").
// 3. every `src/....ts` path named in a comment exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src');

interface Finding {
  file: string;
  line: number;
  name: string;
  problem: string;
}

const format = (f: Finding): string => `${f.file}:${f.line}: ${f.name}: ${f.problem}`;

function hasJsDoc(node: ts.Node): boolean {
  return ts.getJSDocCommentsAndTags(node).some((d) => ts.isJSDoc(d));
}

function jsDocText(node: ts.Node): string {
  return ts
    .getJSDocCommentsAndTags(node)
    .filter(ts.isJSDoc)
    .map((d) => d.getText())
    .join('\n');
}

function isExported(node: ts.Node, localExports: Set<string>, name: string | undefined): boolean {
  const mods = ts.canHaveModifiers(node) ? ts.getModifiers(node) ?? [] : [];
  if (mods.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) return true;
  return name !== undefined && localExports.has(name);
}

function isPrivate(member: ts.ClassElement): boolean {
  if (member.name && ts.isPrivateIdentifier(member.name)) return true;
  const mods = ts.canHaveModifiers(member) ? ts.getModifiers(member) ?? [] : [];
  return mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword);
}

function isFunctionValue(e: ts.Expression | undefined): boolean {
  while (e && (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e))) e = e.expression;
  return e !== undefined && (ts.isArrowFunction(e) || ts.isFunctionExpression(e));
}

/** Exported declarations of one source file that lack a JSDoc comment. */
function undocumentedExports(file: string, text: string): Finding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: Finding[] = [];
  const at = (node: ts.Node, name: string, what: string): void => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({ file, line, name, problem: `exported ${what} without a doc comment` });
  };
  // `export { a, b as c }` without a module specifier exports local declarations.
  const localExports = new Set<string>();
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) localExports.add((el.propertyName ?? el.name).text);
    }
  }
  const documentedFunctions = new Set<string>();
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st)) {
      const name = st.name?.text ?? 'default';
      if (!isExported(st, localExports, st.name?.text)) continue;
      // Overloads: one doc comment on any signature documents the function.
      if (hasJsDoc(st)) documentedFunctions.add(name);
    }
  }
  const reportedFunctions = new Set<string>();
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st)) {
      const name = st.name?.text ?? 'default';
      if (!isExported(st, localExports, st.name?.text)) continue;
      if (documentedFunctions.has(name) || reportedFunctions.has(name)) continue;
      reportedFunctions.add(name);
      at(st, name, 'function');
    } else if (ts.isClassDeclaration(st)) {
      const cls = st.name?.text ?? 'default';
      if (!isExported(st, localExports, st.name?.text)) continue;
      if (!hasJsDoc(st)) at(st, cls, 'class');
      const documentedMethods = new Set<string>();
      for (const m of st.members) {
        if ((ts.isMethodDeclaration(m) || ts.isGetAccessor(m) || ts.isSetAccessor(m)) && hasJsDoc(m)) {
          documentedMethods.add(m.name.getText(sf));
        }
      }
      const reportedMethods = new Set<string>();
      for (const m of st.members) {
        if (!(ts.isMethodDeclaration(m) || ts.isGetAccessor(m) || ts.isSetAccessor(m)) || isPrivate(m)) continue;
        const name = m.name.getText(sf);
        // A getter/setter pair, or an overloaded method, needs one comment.
        if (documentedMethods.has(name) || reportedMethods.has(name)) continue;
        reportedMethods.add(name);
        at(m, `${cls}.${name}`, ts.isMethodDeclaration(m) ? 'method' : 'accessor');
      }
    } else if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        if (!ts.isIdentifier(d.name) || !isFunctionValue(d.initializer)) continue;
        if (!isExported(st, localExports, d.name.text)) continue;
        // The comment sits on the statement (`/** .. */ export const f = () => ..`).
        if (!hasJsDoc(d) && !hasJsDoc(st)) at(d, d.name.text, 'const function');
      }
    }
  }
  return out;
}

// A name says "duration", "time" or "size" when its last word is one of these (`timeout`, `probeInterval`,
// `RESYNC_INTERVAL`, `bufferSize`, `idleTimer`, `sentAt`, `blockedUntil`); it carries its unit when one of its
// words is a unit (`timeoutMs`, `TTL_S`). A point in time needs its clock too, so its comment says e.g. "epoch ms".
const QUANTITY_WORDS = new Set(['timeout', 'interval', 'delay', 'backoff', 'period', 'duration', 'size', 'ttl', 'linger', 'grace']);
// Points in time and timers; not in UPPER_SNAKE names, which are protocol numbers (`NHA_RES_GROUP_IDLE_TIMER`).
const TIME_WORDS = new Set(['timer', 'deadline', 'at', 'until', 'since']);
const UNIT_WORDS = new Set(['ms', 'millis', 'milliseconds', 's', 'sec', 'secs', 'seconds', 'us', 'ns', 'minutes', 'bytes', 'kb', 'kib', 'mb', 'mib', 'pages', 'packets']);
// A unit in the comment, as a word.
const UNIT_IN_TEXT = /\b(ms|milliseconds?|s|secs?|seconds?|µs|us|microseconds?|ns|nanoseconds?|minutes?|hours?|bytes?|octets?|KiB|MiB|kB|MB|packets?|entries|jiffies|centiseconds?|cs)\b/;

function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[_\s]+/)
    .filter((w) => w !== '')
    .map((w) => w.toLowerCase());
}

function isUnitlessQuantityName(name: string): boolean {
  const words = nameWords(name);
  const last = words[words.length - 1] ?? '';
  const upperSnake = name === name.toUpperCase();
  return (QUANTITY_WORDS.has(last) || (TIME_WORDS.has(last) && !upperSnake)) && !words.some((w) => UNIT_WORDS.has(w));
}

/** Inside a function body or a private member: not part of what a module offers. */
function isLocal(node: ts.Node): boolean {
  for (let p = node.parent; p; p = p.parent) {
    if (ts.isBlock(p) || ts.isArrowFunction(p) || (ts.isClassElement(p) && isPrivate(p))) return true;
  }
  return false;
}

/** A parameter callers see: of a function declaration, method or signature that is not private. */
function isPublicParameter(node: ts.ParameterDeclaration): boolean {
  const fn = node.parent;
  if (isLocal(fn) || ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) return false;
  if (ts.isMethodDeclaration(fn) || ts.isConstructorDeclaration(fn)) return !isPrivate(fn);
  if (ts.isFunctionDeclaration(fn)) return (ts.getModifiers(fn) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  return true;
}

/**
 * The doc comments that describe `node`: its own and those of the declarations around it up to the module or class
 * member it belongs to (a field of an inline object type is described by its property's or function's comment).
 */
function docAround(node: ts.Node): string {
  let text = '';
  for (let p: ts.Node = node; !ts.isSourceFile(p); p = p.parent) {
    text += jsDocText(p);
    if (ts.isSourceFile(p.parent) || ts.isClassLike(p.parent) || ts.isInterfaceDeclaration(p.parent)) break;
  }
  return text;
}

function isNumberType(t: ts.TypeNode | undefined, init: ts.Expression | undefined): boolean {
  if (t) {
    if (t.kind === ts.SyntaxKind.NumberKeyword) return true;
    if (ts.isUnionTypeNode(t)) return t.types.some((x) => x.kind === ts.SyntaxKind.NumberKeyword);
    return false;
  }
  return init !== undefined && ts.isNumericLiteral(init);
}

/** Numbers callers see (not locals, not private) named as a duration, time or size whose name and doc comment give no unit. */
function unitlessQuantities(file: string, text: string): Finding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: Finding[] = [];
  const check = (node: ts.Node, name: string, type: ts.TypeNode | undefined, init: ts.Expression | undefined, doc: string): void => {
    if (isUnitlessQuantityName(name) && isNumberType(type, init) && !UNIT_IN_TEXT.test(doc)) {
      const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      out.push({ file, line, name, problem: 'time or size without a unit in its name or doc comment' });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isPropertySignature(node) && ts.isIdentifier(node.name) && !isLocal(node)) {
      check(node, node.name.text, node.type, undefined, docAround(node));
    } else if (ts.isPropertyDeclaration(node) && ts.isIdentifier(node.name) && !isPrivate(node)) {
      check(node, node.name.text, node.type, node.initializer, jsDocText(node));
    } else if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && !isLocal(node)) {
      // A const's comment sits on its statement.
      check(node, node.name.text, node.type, node.initializer, docAround(node));
    } else if (ts.isParameter(node) && ts.isIdentifier(node.name) && isPublicParameter(node)) {
      // A parameter is described in its function's comment.
      check(node, node.name.text, node.type, node.initializer, docAround(node));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

// `src/x/y.ts` (or `.js`, or a folder `src/x/`) named in a comment.
const SRC_PATH = /\b(?:src|test|bench|scripts|docs)\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]/g;

/** Paths under src/ named in comments that do not exist in the tree. */
function stalePaths(file: string, text: string, exists: (p: string) => boolean): Finding[] {
  const out: Finding[] = [];
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  // Comments are trivia around tokens: collect them from every node and token (a raw scanner misreads regex
  // and template literals), each once.
  const seen = new Set<number>();
  const comments: ts.CommentRange[] = [];
  const visit = (node: ts.Node): void => {
    for (const r of [...(ts.getLeadingCommentRanges(text, node.pos) ?? []), ...(ts.getTrailingCommentRanges(text, node.end) ?? [])]) {
      if (!seen.has(r.pos)) {
        seen.add(r.pos);
        comments.push(r);
      }
    }
    for (const child of node.getChildren(sf)) visit(child);
  };
  visit(sf);
  for (const c of comments) {
    for (const m of text.slice(c.pos, c.end).matchAll(SRC_PATH)) {
      const p = m[0];
      // A module may be named without its extension (`src/model/ipv4`), or by its compiled name.
      if (!exists(p) && !exists(p.replace(/\.js$/, '.ts')) && !exists(`${p}.ts`)) {
        const line = sf.getLineAndCharacterOfPosition(c.pos + (m.index ?? 0)).line + 1;
        out.push({ file, line, name: p, problem: 'path in a comment does not exist' });
      }
    }
  }
  return out.sort((a, b) => a.line - b.line);
}

function productSources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'build' && e.name !== 'fixtures') walk(p);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
        out.push(path.relative(ROOT, p).split(path.sep).join('/'));
      }
    }
  };
  walk(SRC);
  return out.sort();
}

const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const existsInTree = (rel: string): boolean => fs.existsSync(path.join(ROOT, rel));

test('the checker names an undocumented export (planted) and passes once it is documented', () => {
  const planted = [
    'export function planted(a: number): number { return a; }',
    'export const arrow = (x: string): string => x;',
    'export class Box {',
    '  open(): void {}',
    '  private hidden(): void {}',
    '  get size(): number { return 1; }',
    '}',
    'function local(): void {}',
    'export { local };',
    'export function over(a: string): string;',
    '/** Documented on one overload. */',
    'export function over(a: number): number;',
    'export function over(a: unknown): unknown { return a; }',
    'export type NotAFunction = number;',
    'export const notAFunction = 3;',
  ].join('\n');
  assert.deepEqual(undocumentedExports('src/planted.ts', planted).map(format), [
    'src/planted.ts:1: planted: exported function without a doc comment',
    'src/planted.ts:2: arrow: exported const function without a doc comment',
    'src/planted.ts:3: Box: exported class without a doc comment',
    'src/planted.ts:4: Box.open: exported method without a doc comment',
    'src/planted.ts:6: Box.size: exported accessor without a doc comment',
    'src/planted.ts:8: local: exported function without a doc comment',
  ]);
  const documented = [
    '/** Returns a. */',
    'export function planted(a: number): number { return a; }',
    '/** Echoes x. */',
    'export const arrow = (x: string): string => x;',
    '/** A box. */',
    'export class Box {',
    '  /** Opens it. */',
    '  open(): void {}',
    '  private hidden(): void {}',
    '}',
    '/** Local, exported below. */',
    'function local(): void {}',
    'export { local };',
  ].join('\n');
  assert.deepEqual(undocumentedExports('src/planted.ts', documented), []);
});

test('the checker names a duration or size with no unit, and accepts a unit in the name or the comment', () => {
  const planted = [
    'export interface Options {',
    '  /** How long to wait. */',
    '  timeout: number;',
    '  probeInterval?: number;',
    '  /** Delay before a retry, in milliseconds. */',
    '  retryDelay: number;',
    '  /** Wait this many seconds. */',
    '  holdPeriod: number;',
    '  timeoutMs: number;',
    '  bufferSizeBytes: number;',
    '  /** Waits; `delay` is in seconds. */',
    '  wait(delay: number): void;',
    '  sleep(delay: number): void;',
    '  sentAt: number;',
    '  /** When it began, epoch ms. */',
    '  since: number;',
    '  /** Text such as "5s". */',
    '  interval: string;',
    '  size: number | undefined;',
    '}',
    '/** Socket buffer. */',
    'export const RCVBUF_SIZE = 4;',
    '/** Socket buffer, bytes. */',
    'export const bufferSize = 4096;',
    'export const RESYNC_INTERVAL_MS = 30000;',
    '/** A netlink attribute type, not a time. */',
    'export const NHA_RES_GROUP_IDLE_TIMER = 2;',
    'function local(): void { const delay = 5; const at = (since: number) => since; }',
    'class C { private openedAt = 0; }',
    'export function judge(at: number): void {}',
    'function helper(at: number): void {}',
  ].join('\n');
  assert.deepEqual(unitlessQuantities('src/planted.ts', planted).map(format), [
    'src/planted.ts:3: timeout: time or size without a unit in its name or doc comment',
    'src/planted.ts:4: probeInterval: time or size without a unit in its name or doc comment',
    'src/planted.ts:13: delay: time or size without a unit in its name or doc comment',
    'src/planted.ts:14: sentAt: time or size without a unit in its name or doc comment',
    'src/planted.ts:19: size: time or size without a unit in its name or doc comment',
    'src/planted.ts:22: RCVBUF_SIZE: time or size without a unit in its name or doc comment',
    'src/planted.ts:30: at: time or size without a unit in its name or doc comment',
  ]);
});

test('the checker names a path in a comment that does not exist', () => {
  const text = [
    '// see src/errors.ts and src/gone/away.ts',
    '/** Moved: src/plan/old.ts */',
    'const x = "src/not/a/comment.ts";',
    'const re = /^([^/]+)\\/(3[0-2])$/; // src/after/regex.ts',
    'const t = `${x}/${re}`; // src/model/ipv4 exists',
    'function f(): void {',
    '  // src/inside/block.ts',
    '}',
    '// src/at/end.ts',
  ].join('\n');
  assert.deepEqual(stalePaths('src/planted.ts', text, existsInTree).map(format), [
    'src/planted.ts:1: src/gone/away.ts: path in a comment does not exist',
    'src/planted.ts:2: src/plan/old.ts: path in a comment does not exist',
    'src/planted.ts:4: src/after/regex.ts: path in a comment does not exist',
    'src/planted.ts:7: src/inside/block.ts: path in a comment does not exist',
    'src/planted.ts:9: src/at/end.ts: path in a comment does not exist',
  ]);
});

test('every export under src/ has a doc comment', () => {
  const files = productSources();
  assert.ok(files.length > 50, `found only ${files.length} source files under ${SRC}`);
  const findings = files.flatMap((f) => undocumentedExports(f, read(f)));
  assert.deepEqual(findings.map(format), []);
});

test('every duration and size under src/ states its unit', () => {
  const findings = productSources()
    .flatMap((f) => unitlessQuantities(f, read(f)));
  assert.deepEqual(findings.map(format), []);
});

test('every src/ path named in a comment exists', () => {
  const findings = productSources().flatMap((f) => stalePaths(f, read(f), existsInTree));
  assert.deepEqual(findings.map(format), []);
});
