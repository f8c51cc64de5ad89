// The JSON Schema for editors (uplinkd.schema.json) and the validator cannot drift apart:
// - the keys of every section the validator reads (recorded from its own Reader.map calls while it
//   reads every example) are exactly the keys the schema declares there, and every section the
//   schema declares is exercised by some example;
// - the schema accepts every YAML example in README.md, docs/*.md, the packaged example config and
//   the valid fixtures, and rejects every invalid fixture the validator rejects, except the ones in
//   test/fixtures/config/invalid-semantic/ (checks across values JSON Schema cannot express);
// - renaming or deleting any key of an example, or putting a mapping where a scalar was, is
//   accepted or rejected by both alike;
// - every default the schema shows in an editor reads as the validator's default.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { parse, stringify } from 'yaml';
import { UplinkdError } from '../errors';
import { parseConfig } from './load';
import { Reader, type Field } from './reader';

const ROOT = path.join(__dirname, '..', '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'config');
const FILE = '/etc/uplinkd/uplinkd.yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  if?: Schema;
  then?: Schema;
  else?: Schema;
}

const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'src', 'config', 'uplinkd.schema.json'), 'utf8')) as Schema;
const TOP_SCHEMA = schema.properties ?? {};
const UPLINK_SCHEMA = TOP_SCHEMA.uplinks?.items?.properties ?? {};
// Union types: `nat:` is the string masquerade or a mapping {snat: ADDRESS}.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validate = ajv.compile(schema);

// Every section key list the validator reads with, by path with list indexes as [].
const sections = new Map<string, Set<string>>();
const originalMap = Reader.prototype.map;
Reader.prototype.map = function map(this: Reader, f: Field, keys: readonly string[]) {
  const at = f.path.replace(/\[\d+\]/g, '[]');
  const known = sections.get(at) ?? new Set<string>();
  for (const k of keys) known.add(k);
  sections.set(at, known);
  return originalMap.call(this, f, keys);
};
after(() => {
  Reader.prototype.map = originalMap;
});

/** The validator's verdict: undefined when accepted, else its message. */
function validatorProblem(text: string): string | undefined {
  try {
    parseConfig(text, FILE);
    return undefined;
  } catch (e) {
    if (!(e instanceof UplinkdError) || e.code !== 'config') throw e;
    return e.message;
  }
}

/** The schema's verdict on YAML text as an editor sees it: undefined when accepted. */
function schemaProblem(text: string): string | undefined {
  let data: unknown;
  try {
    data = parse(text, { uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    return `YAML: ${(e as Error).message}`;
  }
  return validate(data) ? undefined : ajv.errorsText(validate.errors);
}

interface Example {
  where: string;
  text: string;
}

/**
 * Every ```yaml block of README.md and docs/*.md. A fragment is completed: a list is the uplinks, a
 * mapping of uplink keys (e.g. only `monitor:`) is one uplink, other mappings get one uplink added.
 */
function docExamples(): Example[] {
  const files = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const out: Example[] = [];
  for (const file of files) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/^```yaml\n([\s\S]*?)^```/gm)) {
      const line = text.slice(0, m.index).split('\n').length;
      const data = parse(m[1]) as Json;
      const where = `${file}:${line}`;
      if (Array.isArray(data)) out.push({ where, text: stringify({ uplinks: data }) });
      else if (data && typeof data === 'object' && !('uplinks' in data)) {
        const uplink = { name: 'isp1', interface: 'if1', dhcp: true };
        const ofUplink = Object.keys(data).every((k) => k in UPLINK_SCHEMA && !(k in TOP_SCHEMA));
        out.push({ where, text: stringify(ofUplink ? { uplinks: [{ ...uplink, ...data }] } : { uplinks: [uplink], ...data }) });
      }
      else out.push({ where, text: m[1] });
    }
  }
  return out;
}

function fixtures(dir: string): Example[] {
  return readdirSync(path.join(FIXTURES, dir)).filter((f) => f.endsWith('.yaml')).sort()
    .map((f) => ({ where: `test/fixtures/config/${dir}/${f}`, text: readFileSync(path.join(FIXTURES, dir, f), 'utf8') }));
}

const EXAMPLES: Example[] = [
  ...docExamples(),
  { where: 'packaging/uplinkd.yaml', text: readFileSync(path.join(ROOT, 'packaging', 'uplinkd.yaml'), 'utf8') },
  ...fixtures('valid'),
];

test('the docs have YAML examples to check', () => {
  assert.ok(docExamples().length >= 4, 'expected the README and docs examples');
});

test('the schema accepts every example the validator accepts (README, docs, example config, valid fixtures)', () => {
  for (const { where, text } of EXAMPLES) {
    assert.equal(validatorProblem(text), undefined, `${where}: the validator rejects a documented example`);
    assert.equal(schemaProblem(text), undefined, `${where}: the schema rejects an example the validator accepts`);
  }
});

test('the schema rejects every invalid fixture the validator rejects', () => {
  const invalid = fixtures('invalid');
  assert.ok(invalid.length > 0);
  for (const { where, text } of invalid) {
    assert.notEqual(validatorProblem(text), undefined, `${where}: the validator accepts it`);
    assert.notEqual(schemaProblem(text), undefined, `${where}: the schema accepts what the validator rejects`);
  }
});

test('fixtures only the validator rejects say why, and the schema indeed cannot tell', () => {
  for (const { where, text } of fixtures('invalid-semantic')) {
    assert.match(text, /^# validator only: \S/, `${where}: first line must say why JSON Schema cannot check it`);
    assert.notEqual(validatorProblem(text), undefined, `${where}: the validator accepts it`);
    assert.equal(schemaProblem(text), undefined, `${where}: the schema rejects it now: move it to test/fixtures/config/invalid/`);
  }
});

/** Copies of `data`, each with one change: a key renamed, a key removed, or a scalar replaced by a mapping. */
function mutations(data: Json): { what: string; data: Json }[] {
  const out: { what: string; data: Json }[] = [];
  const walk = (node: Json, at: string, replace: (value: Json | undefined) => Json) => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${at}[${i}]`, (v) => replace(node.map((x, j) => (j === i ? v : x)) as Json)));
      return;
    }
    if (node === null || typeof node !== 'object') {
      out.push({ what: `${at}: a mapping instead of ${JSON.stringify(node)}`, data: replace({ x: 1 }) });
      return;
    }
    for (const key of Object.keys(node)) {
      const rest = Object.fromEntries(Object.entries(node).filter(([k]) => k !== key));
      out.push({ what: `${at}.${key} renamed`, data: replace({ ...rest, [`${key}_x`]: node[key] }) });
      out.push({ what: `${at}.${key} removed`, data: replace(rest) });
      walk(node[key], `${at}.${key}`, (v) => replace({ ...node, [key]: v as Json }));
    }
  };
  walk(data, '', (v) => v as Json);
  return out;
}

test('renamed keys, removed keys and mappings for scalars: the schema and the validator agree', () => {
  let checked = 0;
  for (const { where, text } of EXAMPLES) {
    for (const { what, data } of mutations(parse(text) as Json)) {
      const yamlText = stringify(data);
      const validator = validatorProblem(yamlText);
      const schemaSays = schemaProblem(yamlText);
      if (validator !== undefined) assert.notEqual(schemaSays, undefined, `${where} ${what}: the validator rejects it (${validator}), the schema accepts it`);
      else assert.equal(schemaSays, undefined, `${where} ${what}: the validator accepts it, the schema rejects it`);
      checked++;
    }
  }
  assert.ok(checked > 100, `only ${checked} mutations`);
});

/** Property names the schema declares on an object schema, its conditional branches included. */
function declared(s: Schema): Set<string> {
  const names = new Set(Object.keys(s.properties ?? {}));
  for (const branch of [...(s.allOf ?? []), ...(s.anyOf ?? []), ...(s.oneOf ?? []), s.if, s.then, s.else]) {
    if (branch) for (const n of declared(branch)) names.add(n);
  }
  return names;
}

/** The schema at a validator path such as `uplinks[].monitor`. */
function schemaAt(at: string): Schema | undefined {
  let s: Schema | undefined = schema;
  for (const token of at.match(/\[\]|[^.[\]]+/g) ?? []) {
    if (!s) return undefined;
    if (token === '[]') s = s.items;
    else s = s.properties?.[token] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
  }
  return s;
}

/** Paths of every closed object section of the schema (additionalProperties: false). */
function schemaSections(s: Schema, at: string, out: Map<string, Schema>): Map<string, Schema> {
  if (s.additionalProperties === false) out.set(at, s);
  for (const [key, child] of Object.entries(s.properties ?? {})) schemaSections(child, at ? `${at}.${key}` : key, out);
  if (s.items) schemaSections(s.items, `${at}[]`, out);
  return out;
}

test('every section: the schema declares exactly the keys the validator knows', () => {
  // Reading every example (and invalid fixture) records the validator's key lists.
  for (const { text } of [...EXAMPLES, ...fixtures('invalid'), ...fixtures('invalid-semantic')]) validatorProblem(text);
  assert.ok(sections.has(''), 'the top level was read');
  for (const [at, keys] of sections) {
    const s = schemaAt(at);
    assert.ok(s, `the validator reads a section '${at || '(top level)'}' with keys ${[...keys].join(', ')} that the schema does not have`);
    assert.equal(s.additionalProperties, false, `'${at}': the schema must reject unknown keys as the validator does`);
    assert.deepEqual([...declared(s)].sort(), [...keys].sort(),
      `'${at || '(top level)'}': src/config/uplinkd.schema.json and the validator's key list differ`);
  }
  for (const at of schemaSections(schema, '', new Map()).keys()) {
    assert.ok(sections.has(at), `the schema's section '${at}' is read by no example: add one to docs/ or test/fixtures/config/valid/`);
  }
});

test("every default the schema shows an editor is the validator's default", () => {
  const base = (): Record<string, Json> => ({
    uplinks: [{ name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', monitor: { targets: ['192.0.2.1'] } }],
  });
  const withDefaults: [string, Json][] = [];
  const collect = (s: Schema & { default?: Json }, at: string) => {
    if (s.default !== undefined) withDefaults.push([at, s.default]);
    for (const [key, child] of Object.entries(s.properties ?? {})) collect(child, at ? `${at}.${key}` : key);
    if (s.items) collect(s.items, `${at}[0]`);
  };
  collect(schema, '');
  assert.ok(withDefaults.length >= 20, `only ${withDefaults.length} defaults`);
  const expected = parseConfig(stringify(base()), FILE);
  for (const [at, value] of withDefaults) {
    // Set the key to the schema's default in the base document; the validator must read the same config.
    const doc = base();
    const tokens = at.match(/[^.[\]]+/g)!;
    let node = doc as Record<string, Json>;
    for (const t of tokens.slice(0, -1)) {
      node[t] ??= {};
      node = node[t] as Record<string, Json>;
    }
    node[tokens[tokens.length - 1]] = value;
    assert.deepEqual(parseConfig(stringify(doc), FILE), expected, `${at}: the schema's default ${JSON.stringify(value)} is not the validator's`);
  }
});
