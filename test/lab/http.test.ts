// `uplinkd run` with `http.listen` in the lab's router: /metrics, / and /status.json answer on the
// router's loopback and agree with `uplinkd status --json`; the LAN cannot reach them; a reload
// moves the endpoint; SIGTERM still stops the daemon promptly.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServedStatus } from '../../src/daemon/http';
import { daemonConfig, startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { labDown } from '../../lab/lab';
import { LAN, type LabInfo } from '../../lab/topology';
import { freshLab, NEEDS_ROOT } from './support';

const PREFIX = `ulw${process.pid % 100000}-`;
const LISTEN = '127.0.0.1:9117';
// ready, waiting, link-down, no-address, no-gateway, unhealthy (src/plan/planner.ts UplinkState).
const UPLINK_STATE_COUNT = 6;

interface Reply { status: number; type: string | null; body: string }

/** One GET from inside `ns` with Node's fetch (no curl needed); `{ error }` when it cannot connect. */
async function httpGet(ns: string, url: string): Promise<Reply | { error: string }> {
  const script = `fetch(process.argv[1], { signal: AbortSignal.timeout(3000) })
    .then(async (r) => console.log(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), body: await r.text() })))
    .catch((e) => console.log(JSON.stringify({ error: String(e.cause?.code ?? e.message) })));`;
  const r = await inNs(ns, process.execPath, ['-e', script, url], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout) as Reply | { error: string };
}

async function mustGet(ns: string, url: string): Promise<Reply> {
  const r = await httpGet(ns, url);
  assert.ok(!('error' in r), `GET ${url} in ${ns} failed: ${'error' in r ? r.error : ''}`);
  return r;
}

/** `name{labels} value` lines -> [name, labels, value]. */
function parseSeries(body: string): { name: string; labels: Record<string, string>; value: number }[] {
  return body.split('\n').filter((l) => l && !l.startsWith('#')).map((line) => {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    return { name: m[1], labels, value: Number(m[3]) };
  });
}

describe('uplinkd run: status page and metrics', { skip: NEEDS_ROOT }, () => {
  let lab: LabInfo;
  let config: string;
  let daemon: RunningDaemon | undefined;

  before(async () => {
    lab = await freshLab({ prefix: PREFIX, isp1: 'static', isp2: 'dhcp', dhcpClient: 'dhclient' });
    config = path.join(lab.stateDir, 'daemon.yaml');
    await fs.writeFile(config, daemonConfig(lab, path.join(lab.stateDir, 'control.sock'), `http:\n  listen: "${LISTEN}"\n`));
    daemon = await startDaemon(lab.ns.router, config);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    await labDown(PREFIX);
  });

  it('/metrics on the router\'s loopback: uplink series and states match `uplinkd status --json`', async () => {
    const res = await mustGet(lab.ns.router, `http://${LISTEN}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.type, 'text/plain; version=0.0.4; charset=utf-8');
    const st = await uplinkd(lab.ns.router, ['status', '--json', '-c', config]);
    assert.equal(st.code, 0, st.stderr);
    const status = JSON.parse(st.stdout) as ServedStatus;
    const series = parseSeries(res.body);
    const value = (name: string, labels: Record<string, string>) =>
      series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).map((s) => s.value);

    assert.deepEqual(status.uplinks.map((u) => [u.name, u.state]), [['isp1', 'ready'], ['isp2', 'ready']], 'the lab is routed');
    for (const u of status.uplinks) {
      assert.deepEqual(value('uplinkd_uplink_up', { uplink: u.name, interface: u.interface }), [u.state === 'ready' ? 1 : 0], u.name);
      const states = series.filter((s) => s.name === 'uplinkd_uplink_state' && s.labels.uplink === u.name);
      assert.equal(states.length, UPLINK_STATE_COUNT, 'one series per planner state');
      assert.deepEqual(states.filter((s) => s.value === 1).map((s) => s.labels.state), [u.state]);
      assert.deepEqual(value('uplinkd_uplink_in_default', { uplink: u.name }), [u.inDefault ? 1 : 0]);
      assert.deepEqual(value('uplinkd_uplink_weight', { uplink: u.name }), [u.weight]);
    }
    assert.deepEqual(value('uplinkd_pinning_in_place', {}), status.pinningInPlace === undefined ? [] : [status.pinningInPlace ? 1 : 0]);
    assert.ok(value('uplinkd_cycles_total', {})[0] >= 1);
    assert.ok(value('uplinkd_changes_applied_total', {})[0] > 0, 'the start applied changes');
    const pkg = JSON.parse(await fs.readFile(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(value('uplinkd_build_info', { version: pkg.version }), [1]);
  });

  it('/ is the HTML page with both uplinks; /status.json has the same uplinks as the control socket', async () => {
    const page = await mustGet(lab.ns.router, `http://${LISTEN}/`);
    assert.equal(page.status, 200);
    assert.equal(page.type, 'text/html; charset=utf-8');
    for (const u of lab.uplinks) assert.match(page.body, new RegExp(`<td>${u.name}</td><td>${u.interface}</td><td>${u.address.replace(/\./g, '\\.')}/`));
    const json = await mustGet(lab.ns.router, `http://${LISTEN}/status.json`);
    const served = JSON.parse(json.body) as ServedStatus;
    const st = JSON.parse((await uplinkd(lab.ns.router, ['status', '--json', '-c', config])).stdout) as ServedStatus;
    assert.deepEqual(served.uplinks, st.uplinks);
    assert.equal(served.pid, st.pid);
  });

  it('the LAN host cannot reach it: it listens on the router\'s loopback only', async () => {
    const r = await httpGet(lab.ns.lan, `http://${LAN.routerAddress}:9117/metrics`);
    assert.ok('error' in r, `expected no answer, got ${JSON.stringify(r).slice(0, 200)}`);
  });

  it('a reload with another listen address moves the endpoint', async () => {
    const text = await fs.readFile(config, 'utf8');
    await fs.writeFile(config, text.replace(LISTEN, '127.0.0.1:9118'));
    const r = await uplinkd(lab.ns.router, ['reload', '-c', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await mustGet(lab.ns.router, 'http://127.0.0.1:9118/metrics')).status, 200);
    assert.ok('error' in (await httpGet(lab.ns.router, `http://${LISTEN}/metrics`)), 'the old port is closed');
  });

  it('SIGTERM stops the daemon promptly with the endpoint open', async () => {
    const started = Date.now();
    await stopDaemon(daemon!, 'SIGTERM');
    const took = Date.now() - started;
    assert.equal(daemon!.child.exitCode, 0);
    assert.ok(took < 5_000, `stop took ${took} ms`);
    assert.ok(daemon!.lines.some((l) => /event=stop /.test(l)), daemon!.lines.join('\n'));
  });
});
