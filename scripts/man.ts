// Man pages from the docs: a converter for the small Markdown subset docs/ uses (headings,
// paragraphs, lists, fenced code, pipe tables, inline code/bold/italic/links) to man(7) roff,
// so uplinkd(8) and uplinkd.yaml(5) say what docs/uplinkd.8.md and docs/configuration.md say.
// Usage: node dist/scripts/man.js OUTDIR VERSION DATE  (writes OUTDIR/uplinkd.8 and OUTDIR/uplinkd.yaml.5)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One man page: its name, section, the .TH fields and the Markdown body. */
export interface ManPage {
  /** e.g. `uplinkd.yaml` */
  name: string;
  /** man section number, e.g. 5 */
  section: number;
  /** right of the .TH line: e.g. `uplinkd 0.1.0` */
  source: string;
  /** centre of the .TH line: e.g. `File Formats` */
  manual: string;
  /** YYYY-MM-DD */
  date: string;
  markdown: string;
}

/** Escapes text for roff: backslashes, and a leading `.` or `'` that would read as a request. */
function escapeText(text: string): string {
  return text.replace(/\\/g, '\\e');
}

function protectLine(line: string): string {
  return /^[.']/.test(line) ? `\\&${line}` : line;
}

/** Literal text (code): escaped, with `-` as a real minus so it can be copied. */
function literal(text: string): string {
  return escapeText(text).replace(/-/g, '\\-');
}

/** Inline Markdown -> roff: `code` and **bold** in bold, *em* in italics, [text](link) as its text. */
export function inline(text: string): string {
  const parts = text.split(/(`[^`]+`)/);
  return parts.map((part, i) => {
    if (i % 2 === 1) return `\\fB${literal(part.slice(1, -1))}\\fR`;
    return escapeText(part)
      .replace(/\[([^\]]+)\]\([^)]+\)/g, '$1')
      .replace(/\*\*([^*]+)\*\*/g, '\\fB$1\\fR')
      .replace(/(^|[^\w*])\*([^*\s][^*]*)\*/g, '$1\\fI$2\\fR');
  }).join('');
}

/** Heading text without Markdown, for .SH/.SS. */
function plain(text: string): string {
  return text.replace(/`/g, '').replace(/\[([^\]]+)\]\([^)]+\)/g, '$1').replace(/\*/g, '').replace(/"/g, "'");
}

/** Cells of a `| a | b |` row; `\|` is a literal bar (as in `text\|ip`). */
function cells(row: string): string[] {
  const inner = row.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

const LIST_ITEM = /^\s*(?:[-*]|\d+\.)\s+/;

/**
 * Markdown -> man(7) roff. `# ` headings are dropped (the .TH line names the page), `## ` become
 * .SH (upper case), `### ` .SS. A table becomes a tagged list: the first column is the tag, then
 * the middle columns each after its header, then the last column.
 */
export function markdownToRoff(page: ManPage): string {
  const out: string[] = [
    `.TH "${page.name.toUpperCase()}" "${page.section}" "${page.date}" "${page.source}" "${page.manual}"`,
  ];
  const lines = page.markdown.split('\n');
  let i = 0;
  const blank = (l: string | undefined) => l === undefined || l.trim() === '';
  while (i < lines.length) {
    const line = lines[i];
    if (blank(line)) {
      i++;
      continue;
    }
    const fence = /^```/.exec(line);
    if (fence) {
      out.push('.PP', '.RS 4', '.nf');
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) out.push(protectLine(literal(lines[i])));
      out.push('.fi', '.RE');
      i++;
      continue;
    }
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    if (heading) {
      if (heading[1].length === 2) out.push(`.SH "${plain(heading[2]).toUpperCase()}"`);
      else if (heading[1].length === 3) out.push(`.SS "${plain(heading[2])}"`);
      i++;
      continue;
    }
    if (line.trim().startsWith('|')) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].trim().startsWith('|'); i++) rows.push(cells(lines[i]));
      const [header, , ...body] = rows;
      for (const row of body) {
        out.push('.TP', protectLine(inline(row[0] ?? '')));
        // Middle columns carry their header ("default: 1000"); the last one is the description.
        const rest = row.slice(1).map((cell, j) => ({ cell, label: j + 2 < row.length ? header[j + 1] : '' }))
          .filter(({ cell }) => cell !== '');
        rest.forEach(({ cell, label }, j) => {
          if (j > 0) out.push('.br');
          out.push(protectLine(`${label ? `${inline(label)}: ` : ''}${inline(cell)}`));
        });
      }
      continue;
    }
    if (LIST_ITEM.test(line)) {
      out.push('.IP \\(bu 2', protectLine(inline(line.replace(LIST_ITEM, ''))));
      for (i++; i < lines.length && !blank(lines[i]) && !LIST_ITEM.test(lines[i]) && /^\s/.test(lines[i]); i++)
        out.push(protectLine(inline(lines[i].trim())));
      continue;
    }
    out.push('.PP');
    for (; i < lines.length && !blank(lines[i]) && !/^(```|#|\|)/.test(lines[i]) && !LIST_ITEM.test(lines[i]); i++)
      out.push(protectLine(inline(lines[i].trim())));
  }
  return `${out.join('\n')}\n`;
}

/** The text before the first `## ` heading, without its `# ` title. */
function intro(markdown: string): string {
  const end = markdown.search(/^## /m);
  return (end < 0 ? markdown : markdown.slice(0, end)).replace(/^# .*\n/, '');
}

/** The text from the first `## ` heading on (what comes before it is about the page, not on it). */
function fromFirstSection(markdown: string): string {
  return markdown.slice(Math.max(0, markdown.search(/^## /m)));
}

/** The two pages, from the docs of the checkout at `root`. */
export function manPages(root: string, version: string, date: string): { file: string; roff: string }[] {
  const doc = (name: string) => readFileSync(path.join(root, 'docs', name), 'utf8');
  const source = `uplinkd ${version}`;
  const configuration = doc('configuration.md');
  const yamlPage = [
    '## NAME', '', 'uplinkd.yaml - configuration file of uplinkd(8)', '',
    '## SYNOPSIS', '', '`/etc/uplinkd/uplinkd.yaml`', '',
    '## DESCRIPTION', '', intro(configuration).trim(), '',
    configuration.slice(configuration.search(/^## /m)).trim(), '',
    '## HEALTH MONITORING (`monitor`)', '', intro(doc('health.md')).trim(), '',
    '## FILES', '',
    '`/usr/share/uplinkd/uplinkd.schema.json` is a JSON Schema of this file for editors: with the ' +
      'yaml-language-server, the first line `# yaml-language-server: $schema=/usr/share/uplinkd/uplinkd.schema.json` ' +
      'completes and checks keys as you type. `uplinkd check` remains the full check.', '',
    '## SEE ALSO', '', 'uplinkd(8); `/usr/share/doc/uplinkd/docs/` (health.md, pinning.md, daemon.md, design.md)', '',
  ].join('\n');
  return [
    { file: 'uplinkd.8', roff: markdownToRoff({ name: 'uplinkd', section: 8, source, manual: 'System Administration', date, markdown: fromFirstSection(doc('uplinkd.8.md')) }) },
    { file: 'uplinkd.yaml.5', roff: markdownToRoff({ name: 'uplinkd.yaml', section: 5, source, manual: 'File Formats', date, markdown: yamlPage }) },
  ];
}

if (require.main === module) {
  const [outDir, version, date] = process.argv.slice(2);
  if (!outDir || !version || !date) {
    console.error('usage: node dist/scripts/man.js OUTDIR VERSION DATE');
    process.exit(2);
  }
  mkdirSync(outDir, { recursive: true });
  for (const { file, roff } of manPages(path.join(__dirname, '..', '..'), version, date))
    writeFileSync(path.join(outDir, file), roff);
}
