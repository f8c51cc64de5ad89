// Reads a parsed YAML document field by field, collecting every problem with
// FILE:LINE:COLUMN and the field path instead of stopping at the first one.
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { ConfigLocation } from '../errors';
import { escapeControl } from '../log';
import { closest, parseDuration, quoted } from './values';

export interface Problem {
  location: ConfigLocation;
  message: string;
}

/** A value in the document with its field path; `at` is where messages point (the key when the value is empty). */
export interface Field {
  node: Node | null;
  path: string;
  at: Node | null;
}

/**
 * Reads a parsed YAML document (the `yaml` package's Document) field by field and collects every problem with its
 * file, line, column (1-based, from the LineCounter) and dotted field path, instead of stopping at the first:
 * readers return undefined for a bad value, and the loader throws one UplinkdError('config') listing `problems`.
 */
export class Reader {
  readonly problems: Problem[] = [];
  /** Paths of known keys suggested for a typo: their absence is not reported again. */
  private readonly suggested = new Set<string>();

  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The document's top-level value, path ''. */
  root(): Field {
    return { node: this.deref(this.doc.contents), path: '', at: this.doc.contents };
  }

  /** Where `at` starts in the file (line and column 1-based; the file start when `at` has no range), for `field`. */
  locate(at: Node | null | undefined, field: string): ConfigLocation {
    const offset = at?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col, field };
  }

  /**
   * Records a problem with `field` at `at`'s position; `message` says what was expected and what was found.
   * Control characters a key or value brought into the field or message are escaped.
   */
  report(at: Node | null | undefined, field: string, message: string): void {
    this.problems.push({ location: this.locate(at, escapeControl(field)), message: escapeControl(message) });
  }

  /** Reports a syntax error at a source offset (no field). */
  reportAt(offset: number, message: string): void {
    const { line, col } = this.lines.linePos(offset);
    this.problems.push({ location: { file: this.file, line, column: col, field: '' }, message: escapeControl(message) });
  }

  /**
   * A mapping's entries by key; unknown keys are reported (with the closest known key).
   * Returns undefined (and reports) when the value is not a mapping.
   */
  map(f: Field, keys: readonly string[]): Map<string, Field> | undefined {
    if (!isMap(f.node)) {
      this.report(f.at, f.path || '(top level)', `expected a mapping of ${keys.join(', ')}, got ${describe(f.node)}`);
      return undefined;
    }
    const entries = new Map<string, Field>();
    for (const pair of f.node.items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key === undefined || !keys.includes(key)) {
        const shown = key === undefined ? 'a non-scalar key' : `unknown key ${quoted(key)}`;
        const hint = key === undefined ? undefined : closest(key, keys);
        const suggestion = hint ? `, did you mean ${quoted(hint)}?` : '';
        if (hint) this.suggested.add(join(f.path, hint));
        this.report(keyNode, join(f.path, key ?? '?'), `${shown}${suggestion} (expected one of: ${keys.join(', ')})`);
        continue;
      }
      const value = this.deref(pair.value as Node | null);
      const empty = value === null || (isScalar(value) && value.value === null);
      entries.set(key, { node: value, path: join(f.path, key), at: empty ? keyNode : value });
    }
    return entries;
  }

  /** The field if present with a value; otherwise reports it as missing (at the parent mapping). */
  required(parent: Field, entries: Map<string, Field>, key: string, why = 'required'): Field | undefined {
    const f = entries.get(key);
    if (f && !isEmpty(f)) return f;
    if (!f && this.suggested.has(join(parent.path, key))) return undefined;
    this.report(f?.at ?? parent.at, join(parent.path, key), `missing (${why})`);
    return undefined;
  }

  /**
   * A list's items as fields `path[i]`; reports `expected a list of <what>` and returns undefined for anything else.
   */
  seq(f: Field, what: string): Field[] | undefined {
    if (!isSeq(f.node)) {
      this.report(f.at, f.path, `expected a list of ${what}, got ${describe(f.node)}`);
      return undefined;
    }
    return f.node.items.map((item, i) => {
      const node = this.deref(item as Node | null);
      return { node, path: `${f.path}[${i}]`, at: node ?? f.at };
    });
  }

  /** A non-empty string; reports `expected <what>` and returns undefined otherwise (numbers are not strings here). */
  string(f: Field, what = 'a string'): string | undefined {
    if (isScalar(f.node) && typeof f.node.value === 'string' && f.node.value !== '') return f.node.value;
    this.report(f.at, f.path, `expected ${what}, got ${describe(f.node)}`);
    return undefined;
  }

  /** A YAML boolean (true/false); reports and returns undefined otherwise. */
  bool(f: Field): boolean | undefined {
    if (isScalar(f.node) && typeof f.node.value === 'boolean') return f.node.value;
    this.report(f.at, f.path, `expected true or false, got ${describe(f.node)}`);
    return undefined;
  }

  /** A number in [min, max]; `integer` also requires a whole number. */
  number(f: Field, min: number, max: number, integer = true): number | undefined {
    const kind = integer ? 'an integer' : 'a number';
    if (!isScalar(f.node) || typeof f.node.value !== 'number' || (integer && !Number.isInteger(f.node.value))) {
      this.report(f.at, f.path, `expected ${kind} from ${min} to ${max}, got ${describe(f.node)}`);
      return undefined;
    }
    const n = f.node.value;
    if (n < min || n > max) {
      this.report(f.at, f.path, `${n} is out of range (expected ${kind} from ${min} to ${max})`);
      return undefined;
    }
    return n;
  }

  /** One of the given strings; reports `expected one of ...` and returns undefined otherwise. */
  oneOf<T extends string>(f: Field, options: readonly T[]): T | undefined {
    if (isScalar(f.node) && typeof f.node.value === 'string' && (options as readonly string[]).includes(f.node.value))
      return f.node.value as T;
    this.report(f.at, f.path, `expected one of ${options.join(', ')}, got ${describe(f.node)}`);
    return undefined;
  }

  /** Milliseconds: an integer (ms) or a string like "250ms", "1.5s", "2m"; at least minMs. */
  duration(f: Field, minMs: number): number | undefined {
    const expected = `expected a duration of at least ${minMs}ms: milliseconds or a string like 250ms, 1.5s, 2m`;
    const raw = isScalar(f.node) ? f.node.value : undefined;
    const ms = typeof raw === 'number' ? (Number.isInteger(raw) ? raw : undefined)
      : typeof raw === 'string' ? parseDuration(raw) : undefined;
    if (ms === undefined) {
      this.report(f.at, f.path, `${expected}, got ${describe(f.node)}`);
      return undefined;
    }
    if (ms < minMs) {
      this.report(f.at, f.path, `${String(raw)} is too short (${expected})`);
      return undefined;
    }
    return ms;
  }

  private deref(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return (node as Node | null | undefined) ?? null;
  }
}

/** True for a field with no value (`key:` or `key: null`), which readers treat as absent. */
export function isEmpty(f: Field): boolean {
  return f.node === null || (isScalar(f.node) && f.node.value === null);
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** How a value reads in a message: "the string 'x'", "a list", "nothing". */
export function describe(node: Node | null): string {
  if (node === null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'nothing';
    if (typeof v === 'string') return `the string ${quoted(v)}`;
    if (typeof v === 'number') return `the number ${v}`;
    if (typeof v === 'boolean') return String(v);
  }
  return 'an unsupported value';
}
