import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, renderStatusPage } from './status-page';
import { SAMPLE_NOW, sampleStatus } from '../../test/support/daemon';

/** The cells' text of the table row whose first cell is `first` (tags stripped). */
function rowCells(html: string, first: string): string[] | undefined {
  for (const tr of html.match(/<tr>.*?<\/tr>/g) ?? []) {
    const cells = [...tr.matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1].replace(/<br>/g, ' ').replace(/<[^>]+>/g, ''));
    if (cells[0] === first) return cells;
  }
  return undefined;
}

describe('status page', () => {
  it('escapes the five HTML metacharacters', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('shows each uplink with interface, address, gateway, table, state, default, health, RTT, loss and time in state', () => {
    const html = renderStatusPage(sampleStatus(), SAMPLE_NOW);
    assert.deepEqual(rowCells(html, 'isp1'), ['isp1', 'if1', '198.51.100.2/24', '198.51.100.1', '1001', 'ready ok', 'yes (weight 1)', 'up', '12.3 ms', '2%', '1m30s']);
    assert.deepEqual(rowCells(html, 'isp2'), ['isp2', 'if2', '-', '-', '1002', 'waiting no address on if2 yet', 'no', 'unknown', '-', '-', '1s']);
  });

  it('is one self-contained document: meta refresh, no scripts, no external assets', () => {
    const html = renderStatusPage(sampleStatus(), SAMPLE_NOW);
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<meta http-equiv="refresh" content="5">/);
    assert.doesNotMatch(html, /<script|<link|<img|src=|https?:\/\//i);
  });

  it('lists the last events newest first with their causes, the pinning line and held-back objects', () => {
    const html = renderStatusPage(sampleStatus(), SAMPLE_NOW);
    const health = html.indexOf('isp1: unknown -&gt; up');
    const apply = html.indexOf('ip rule add from 198.51.100.2/32');
    assert.ok(health > 0 && apply > 0, 'both events are shown');
    assert.ok(health < html.lastIndexOf('ip rule add from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117</td>'), 'newest first');
    assert.deepEqual(rowCells(html, '09:30:00.000'), ['09:30:00.000', 'health', 'isp1: unknown -&gt; up', 'first good round']);
    assert.match(html, /<time datetime="2026-11-21T09:30:00\.000Z" title="2026-11-21T09:30:00\.000Z">09:30:00\.000<\/time>/);
    assert.match(html, /flow pinning: in place/);
    assert.match(html, /restored 6x recently, held back until 2026-11-21T10:00:02\.000Z/);
  });

  it('escapes everything that comes from the status: names, reasons, events, causes, warnings, the pinning line', () => {
    const s = sampleStatus();
    const evil = '<script>alert("x")</script>';
    s.uplinks = [{ ...s.uplinks[0], name: evil, reason: evil, interface: `i"f'1` }];
    s.events = [{ at: evil, event: evil, text: evil, cause: evil }];
    s.warnings = [evil];
    s.pinning = evil;
    s.configFile = evil;
    s.conflicts = [{ object: evil, restorations: 1, backoffMs: 0 }];
    const html = renderStatusPage(s, SAMPLE_NOW);
    assert.doesNotMatch(html, /<script/);
    assert.ok(!html.includes('"x"'), 'double quotes escaped');
    assert.ok(html.includes('i&quot;f&#39;1'));
    assert.ok(html.split('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;').length - 1 >= 9, 'every injected value appears escaped');
  });
});
