// docs/benchmarks.md as a fixed header plus one block per benchmark, each between
// `<!-- bench:NAME start -->` and `<!-- bench:NAME end -->`. A run rewrites only the blocks
// of the benchmarks it ran; the others are kept as they were (`--only x` wipes nothing).

/** One benchmark's results: a heading and a markdown body (tables, method, machine). */
export interface Section {
  /** The registry name, the block's key. */
  name: string;
  title: string;
  body: string;
}

export const startMarker = (name: string): string => `<!-- bench:${name} start -->`;
export const endMarker = (name: string): string => `<!-- bench:${name} end -->`;

export function renderSection(s: Section): string {
  return `${startMarker(s.name)}\n## ${s.title}\n\n${s.body.trim()}\n${endMarker(s.name)}`;
}

const BLOCK = /<!-- bench:([\w-]+) start -->[\s\S]*?<!-- bench:\1 end -->/g;

/** The rendered blocks found in an existing file, by name, in file order. */
export function parseBlocks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(BLOCK)) out.set(m[1], m[0]);
  return out;
}

/**
 * The new file: `header`, then one block per name in `order` (the fresh one if it ran, else the
 * old one if there was one), then old blocks of benchmarks no longer in `order`, unchanged.
 */
export function mergeReport(header: string, existing: string | undefined, fresh: readonly Section[], order: readonly string[]): string {
  const old = parseBlocks(existing ?? '');
  const ran = new Map(fresh.map((s) => [s.name, renderSection(s)]));
  const blocks: string[] = [];
  for (const name of order) {
    const b = ran.get(name) ?? old.get(name);
    if (b !== undefined) blocks.push(b);
  }
  for (const [name, b] of old) if (!order.includes(name)) blocks.push(b);
  for (const [name, b] of ran) if (!order.includes(name)) blocks.push(b);
  return `${header.trim()}\n\n${blocks.join('\n\n')}\n`;
}

/** A markdown table. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
