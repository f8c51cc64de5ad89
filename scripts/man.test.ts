import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inline, markdownToRoff } from './man';

const page = (markdown: string) =>
  markdownToRoff({ name: 'x', section: 5, source: 'uplinkd 1.0', manual: 'File Formats', date: '2026-11-30', markdown });

test('inline: code bold with real minus signs, emphasis, links as their text, backslashes escaped', () => {
  assert.equal(inline('run `uplinkd plan --format ip`'), 'run \\fBuplinkd plan \\-\\-format ip\\fR');
  assert.equal(inline('**bold** and *em*, [pinning.md](pinning.md)'), '\\fBbold\\fR and \\fIem\\fR, pinning.md');
  assert.equal(inline('a\\b'), 'a\\eb');
});

test('headings, paragraphs, lists, code and tables become man(7) requests', () => {
  const roff = page([
    '# Title', '', '## Top level', '', 'Some text', '.starts with a dot', '', '### Sub', '',
    '- one', '  more', '- two', '', '```yaml', 'a: -1', "'quoted'", '```', '',
    '| key | default | meaning |', '| --- | --- | --- |', '| `uplinks` | required | the list `a\\|b` |', '| `lan` | | none |',
  ].join('\n'));
  assert.equal(roff, [
    '.TH "X" "5" "2026-11-30" "uplinkd 1.0" "File Formats"',
    '.SH "TOP LEVEL"', '.PP', 'Some text', '\\&.starts with a dot', '.SS "Sub"',
    '.IP \\(bu 2', 'one', 'more', '.IP \\(bu 2', 'two',
    '.PP', '.RS 4', '.nf', 'a: \\-1', "\\&'quoted'", '.fi', '.RE',
    '.TP', '\\fBuplinks\\fR', 'default: required', '.br', 'the list \\fBa|b\\fR',
    '.TP', '\\fBlan\\fR', 'none', '',
  ].join('\n'));
});
