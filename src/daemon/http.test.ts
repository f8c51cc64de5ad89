import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger, parseLine } from '../log';
import { startHttpServer, StatusHttp, type HttpServer, type StatusSource } from './http';
import { SAMPLE_NOW, sampleStatus } from '../../test/support/daemon';

const LOOPBACK = '127.0.0.1';
const get = (url: string, init: RequestInit = {}) => fetch(url, { ...init, signal: AbortSignal.timeout(3_000) });

function fakeSource(): StatusSource & { calls: number } {
  const source = {
    calls: 0,
    version: '9.8.7',
    now: () => SAMPLE_NOW,
    status() {
      source.calls++;
      return sampleStatus();
    },
  };
  return source;
}

describe('HTTP endpoint on loopback', { timeout: 20_000 }, () => {
  let server: HttpServer;
  let base: string;
  const source = fakeSource();
  const lines: string[] = [];

  before(async () => {
    server = await startHttpServer({ host: LOOPBACK, port: 0 }, source, createLogger({ sink: (l) => lines.push(l) }));
    assert.equal(server.address.host, LOOPBACK);
    assert.ok(server.address.port > 0);
    base = `http://${LOOPBACK}:${server.address.port}`;
  });

  after(() => server.close());

  it('GET /metrics: the exposition format content type and the status as series', async () => {
    const res = await get(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const body = await res.text();
    assert.match(body, /^uplinkd_build_info\{version="9\.8\.7"\} 1$/m);
    assert.match(body, /^uplinkd_uplink_up\{uplink="isp1",interface="if1"\} 1$/m);
    assert.match(body, /^uplinkd_health_state_seconds\{uplink="isp1"\} 90\.5$/m, 'time from the source clock');
  });

  it('GET /: the HTML page, with a policy that forbids scripts', async () => {
    const res = await get(`${base}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const body = await res.text();
    assert.match(body, /<td>isp1<\/td><td>if1<\/td><td>198\.51\.100\.2\/24<\/td>/);
  });

  it('GET /status.json: the status as JSON (a query string is ignored)', async () => {
    const res = await get(`${base}/status.json?x=1`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(sampleStatus())));
  });

  it('unknown paths are 404; other methods 405 with Allow: GET, and nothing is read for them', async () => {
    const missing = await get(`${base}/reload`);
    assert.equal(missing.status, 404);
    await missing.text();
    const before = source.calls;
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
      const res = await get(`${base}/metrics`, { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'GET');
      await res.text();
    }
    assert.equal(source.calls, before, 'no status read for refused requests');
  });

  it('a status source that throws gives 500 and a log line, and the server keeps serving', async () => {
    const failing = await startHttpServer({ host: LOOPBACK, port: 0 }, { version: 'x', status: () => { throw new Error('boom'); } },
      createLogger({ sink: (l) => lines.push(l) }));
    try {
      const res = await get(`http://${LOOPBACK}:${failing.address.port}/metrics`);
      assert.equal(res.status, 500);
      await res.text();
      assert.ok(lines.map(parseLine).some((f) => f.event === 'http' && f.error === 'boom'));
      const again = await get(`http://${LOOPBACK}:${failing.address.port}/`);
      assert.equal(again.status, 500, 'still answering');
      await again.text();
    } finally {
      await failing.close();
    }
  });
});

describe('StatusHttp (the daemon\'s endpoint across reloads)', { timeout: 20_000 }, () => {
  it('a bind failure is logged, not thrown; a reload with a free port binds; removing http closes it', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, LOOPBACK, resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    const lines: string[] = [];
    const endpoint = new StatusHttp(fakeSource(), createLogger({ sink: (l) => lines.push(l) }));
    try {
      await endpoint.configure({ host: LOOPBACK, port: taken });
      const failure = lines.map(parseLine).find((f) => f.event === 'http' && f.level === 'error');
      assert.ok(failure, lines.join('\n'));
      assert.equal(failure.listen, `${LOOPBACK}:${taken}`);
      assert.match(failure.error, /EADDRINUSE/);
      assert.match(failure.msg, /routing goes on/);

      await endpoint.configure({ host: LOOPBACK, port: 0 });
      const listening = lines.map(parseLine).find((f) => f.event === 'http' && f.level === 'info' && f.listen);
      assert.ok(listening, lines.join('\n'));
      const res = await get(`http://${listening.listen}/metrics`);
      assert.equal(res.status, 200);
      await res.text();

      await endpoint.configure(undefined);
      await assert.rejects(get(`http://${listening.listen}/metrics`), 'closed after http was removed');
    } finally {
      await endpoint.close();
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('an unchanged listen keeps the same socket; a changed one rebinds', async () => {
    const lines: string[] = [];
    const endpoint = new StatusHttp(fakeSource(), createLogger({ sink: (l) => lines.push(l) }));
    const listens = () => lines.map(parseLine).filter((f) => f.event === 'http' && f.listen).map((f) => f.listen);
    try {
      await endpoint.configure({ host: LOOPBACK, port: 0 });
      await endpoint.configure({ host: LOOPBACK, port: 0 });
      assert.equal(listens().length, 1, 'not rebound for the same address');
      const first = listens()[0];
      await endpoint.configure({ host: '127.0.0.2', port: 0 });
      assert.equal(listens().length, 2);
      assert.match(listens()[1], /^127\.0\.0\.2:\d+$/);
      await assert.rejects(get(`http://${first}/`), 'the old address is closed');
      const res = await get(`http://${listens()[1]}/`);
      assert.equal(res.status, 200);
      await res.text();
    } finally {
      await endpoint.close();
    }
  });
});
