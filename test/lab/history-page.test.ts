// Issue 10, "history you can look at": `uplinkd run` monitors both lab uplinks with the status page
// on the router's loopback; isp1's upstream is blackholed until isp1 is down, then repaired until it
// is up again. Debian's chromium, headless inside the router namespace, loads the page: the RTT,
// loss and state series it drew and the state-change markers (with their causes) must be the ones
// /status.json serves around the same moment. The screenshot is kept in test-artifacts/history.png.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServedStatus } from '../../src/daemon/http';
import type { HistorySnapshot } from '../../src/health/history';
import { dumpDom, screenshot } from '../../lab/browser';
import { stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, sleep } from '../../lab/exec';
import { blackholeUpstream, restoreUpstream } from '../../lab/faults';
import { addSecondTarget, healthDaemonConfig, startMonitoredDaemon, waitForVerdict } from '../../lab/health';
import { labDown } from '../../lab/lab';
import type { LabInfo } from '../../lab/topology';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `uhh${process.pid % 1000}-`;
const LISTEN = `127.0.0.1:${9200 + (process.pid % 500)}`;
/** Generous bounds for the verdicts (detection idle is about 3 s, recovery a few seconds: docs/health.md). */
const DOWN_MS = 15_000;
const UP_MS = 30_000;
const ARTIFACT = path.join(__dirname, '..', '..', '..', 'test-artifacts', 'history.png');

async function statusJson(ns: string): Promise<ServedStatus> {
  const script = `fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const r = await inNs(ns, process.execPath, ['-e', script, `http://${LISTEN}/status.json`], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout) as ServedStatus;
}

const unescape = (s: string): string =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');

/** Attributes of the elements with data-series in the serialized DOM, values unescaped. */
function drawnSeries(dom: string): Record<string, string>[] {
  return [...dom.matchAll(/<(?:path|g) ([^>]*data-series="[^"]*"[^>]*)>/g)].map((m) =>
    Object.fromEntries([...m[1].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], unescape(a[2])])));
}

/** `at:value ...` -> Map(at -> value text). */
function pointsOf(attr: string | undefined): Map<number, string> {
  assert.ok(attr !== undefined, 'a data-points attribute');
  return new Map(attr.split(' ').filter(Boolean).map((p) => {
    const i = p.indexOf(':');
    return [Number(p.slice(0, i)), p.slice(i + 1)] as const;
  }));
}

interface Marker { at: number; from: string; to: string; reason: string; title: string }

function markers(dom: string, uplink: string): Marker[] {
  const group = new RegExp(`<g data-uplink="${uplink}" data-series="changes">(.*?)</g></svg>`, 's').exec(dom);
  assert.ok(group, `a changes group for ${uplink}`);
  return [...group[1].matchAll(/<g class="change" data-at="(\d+)" data-from="(\w+)" data-to="(\w+)" data-reason="([^"]*)"><title>([^<]*)<\/title>/g)]
    .map((m) => ({ at: Number(m[1]), from: m[2], to: m[3], reason: unescape(m[4]), title: unescape(m[5]) }));
}

/**
 * The page drew series `name` of `uplink` as the history served before (`early`) and after
 * (`late`) the page load: every bucket complete before `early` was taken is drawn with exactly its
 * value; every drawn bucket is one `late` has (a filling bucket may have changed since).
 */
function sameSeries(drawn: Map<number, string>, early: HistorySnapshot, late: HistorySnapshot, uplink: string, name: 'rtt' | 'loss' | 'state'): void {
  const value = (p: HistorySnapshot['uplinks'][string]['points'][number]) =>
    name === 'rtt' ? p.rttMs : name === 'loss' ? p.lossPct : p.state;
  let compared = 0;
  for (const p of early.uplinks[uplink].points) {
    if (p.at + early.bucketMs > early.at) continue;
    const v = value(p);
    if (v === null) assert.ok(!drawn.has(p.at), `${uplink} ${name}: nothing drawn at ${p.at} (no value)`);
    else assert.equal(drawn.get(p.at), String(v), `${uplink} ${name} at ${p.at}`);
    compared++;
  }
  assert.ok(compared >= 4, `${uplink} ${name}: at least 4 complete buckets compared (got ${compared})`);
  const lateAts = new Set(late.uplinks[uplink].points.map((p) => p.at));
  for (const at of drawn.keys()) assert.ok(lateAts.has(at), `${uplink} ${name}: drawn bucket ${at} is served in /status.json`);
}

describe('status page history in a real browser (issue 10)', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let socket: string;
  let daemon: RunningDaemon | undefined;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'dhcp', dhcpClient: 'dhclient' });
    await addSecondTarget(lab);
    socket = path.join(lab.stateDir, 'control.sock');
    const config = path.join(lab.stateDir, 'history.yaml');
    daemon = await startMonitoredDaemon(lab, socket, config, `${healthDaemonConfig(lab, socket)}http:\n  listen: "${LISTEN}"\n`, UP_MS);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    if (lab) await labDown(PREFIX);
  });

  it('draws RTT, loss and state per uplink and marks isp1 going down and back with the causes /status.json gives', async () => {
    await sleep(10_000); // two buckets of both uplinks up
    await blackholeUpstream(lab, 'isp1');
    try {
      await waitForVerdict(socket, 'isp1', 'down', DOWN_MS);
      await sleep(6_000); // a whole bucket down
    } finally {
      await restoreUpstream(lab, 'isp1');
    }
    await waitForVerdict(socket, 'isp1', 'up', UP_MS);
    await sleep(6_000);

    const url = `http://${LISTEN}/`;
    const early = await statusJson(lab.ns.router);
    const dom = await dumpDom(lab.ns.router, url);
    const late = await statusJson(lab.ns.router);
    assert.ok(early.history && late.history, '/status.json carries the history');

    const drawn = drawnSeries(dom);
    for (const uplink of ['isp1', 'isp2']) {
      const of = (name: string) => drawn.find((s) => s['data-uplink'] === uplink && s['data-series'] === name);
      for (const name of ['rtt', 'loss', 'state'] as const) {
        sameSeries(pointsOf(of(name)?.['data-points']), early.history, late.history, uplink, name);
      }
      // The RTT path has one vertex per value drawn.
      const rtt = of('rtt')!;
      assert.equal((rtt.d.match(/[ML]/g) ?? []).length, pointsOf(rtt['data-points']).size, `${uplink}: one vertex per RTT value`);
      // Markers: what /status.json had before the load, possibly followed by changes made since.
      const marks = markers(dom, uplink);
      const served = (h: HistorySnapshot) => h.uplinks[uplink].changes.map((c) => ({ at: c.at, from: c.from, to: c.to, reason: c.reason }));
      assert.deepEqual(marks.slice(0, served(early.history).length).map(({ title: _t, ...m }) => m), served(early.history), `${uplink}: markers as served`);
      assert.deepEqual(served(late.history).slice(0, marks.length), marks.map(({ title: _t, ...m }) => m), `${uplink}: no marker /status.json lacks`);
      for (const m of marks) assert.ok(m.title.endsWith(`${m.from} -> ${m.to}: ${m.reason}`), `${uplink}: the marker's title gives the cause: ${m.title}`);
    }

    // isp1 went down for the blackhole and came back; the page shows it and why.
    const isp1 = markers(dom, 'isp1');
    const down = isp1.findIndex((m) => m.to === 'down');
    assert.ok(down >= 0, `a down marker on isp1: ${JSON.stringify(isp1)}`);
    assert.match(isp1[down].reason, /unanswered/);
    assert.ok(isp1.slice(down + 1).some((m) => m.to === 'up'), `isp1 back up after the down marker: ${JSON.stringify(isp1)}`);
    const isp1States = [...pointsOf(drawn.find((s) => s['data-uplink'] === 'isp1' && s['data-series'] === 'state')!['data-points']).values()];
    assert.ok(isp1States.includes('down') && isp1States.at(-1) === 'up', `isp1's state band: ${isp1States.join(' ')}`);
    assert.ok(!markers(dom, 'isp2').some((m) => m.to === 'down'), 'isp2 never went down');

    await fs.rm(ARTIFACT, { force: true });
    await screenshot(lab.ns.router, url, ARTIFACT, 1280, 1500);
    const png = await fs.readFile(ARTIFACT);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  });
});
