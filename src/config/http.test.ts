import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { parseListen } from './http';
import { parseConfig } from './load';

const FILE = '/etc/uplinkd/uplinkd.yaml';
const UPLINKS = `uplinks:
  - {name: isp1, interface: if1, dhcp: true}
`;

/** The single problem of a rejected config: "FILE:LINE:COL: field: message" and its location. */
function problem(text: string): { line: string; field: string; at: [number, number] } {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof UplinkdError);
    const problems = e.detail.cause as unknown[];
    assert.equal(problems.length, 1, e.message);
    const l = e.detail.location!;
    return { line: e.message, field: l.field, at: [l.line, l.column] };
  }
  assert.fail('expected the configuration to be rejected');
}

test('http is off unless configured', () => {
  assert.equal(parseConfig(UPLINKS, FILE).http, undefined);
});

test('http.listen: IPv4 literal or localhost (read as 127.0.0.1) and a port', () => {
  assert.deepEqual(parseConfig(`${UPLINKS}http: {listen: "127.0.0.1:9117"}\n`, FILE).http, { listen: { host: '127.0.0.1', port: 9117 } });
  assert.deepEqual(parseConfig(`${UPLINKS}http:\n  listen: localhost:80\n`, FILE).http, { listen: { host: '127.0.0.1', port: 80 } });
  assert.deepEqual(parseConfig(`${UPLINKS}http: {listen: 192.0.2.10:65535}\n`, FILE).http, { listen: { host: '192.0.2.10', port: 65535 } });
});

test('bad listen values are reported at the value with file, line and column', () => {
  const noPort = problem(`${UPLINKS}http:\n  listen: 127.0.0.1\n`);
  assert.equal(noPort.field, 'http.listen');
  assert.deepEqual(noPort.at, [4, 11]);
  assert.match(noPort.line, /^\/etc\/uplinkd\/uplinkd\.yaml:4:11: http\.listen: '127\.0\.0\.1': no port \(expected host:port/);
  assert.match(problem(`${UPLINKS}http: {listen: "[::1]:9117"}\n`).line, /'\[::1\]' is not an IPv4 address or localhost/);
  assert.match(problem(`${UPLINKS}http: {listen: "example.org:9117"}\n`).line, /'example\.org' is not an IPv4 address/);
  assert.match(problem(`${UPLINKS}http: {listen: "127.0.0.1:0"}\n`).line, /port 0 is out of range/);
  assert.match(problem(`${UPLINKS}http: {listen: "127.0.0.1:65536"}\n`).line, /port 65536 is out of range/);
  assert.match(problem(`${UPLINKS}http: {listen: "127.0.0.1:http"}\n`).line, /'http' is not a port number/);
  assert.match(problem(`${UPLINKS}http: {listen: 9117}\n`).line, /http\.listen: expected host:port .*got the number 9117/);
});

test('the http section: unknown keys, a missing listen, not a mapping', () => {
  const unknown = problem(`${UPLINKS}http:\n  listen: 127.0.0.1:9117\n  lisen: x\n`);
  assert.equal(unknown.field, 'http.lisen');
  assert.deepEqual(unknown.at, [5, 3]);
  assert.match(unknown.line, /unknown key 'lisen'.*expected one of: listen/);
  assert.match(problem(`${UPLINKS}http: {}\n`).line, /http\.listen: missing/);
  assert.match(problem(`${UPLINKS}http: 127.0.0.1:9117\n`).line, /http: expected a mapping of listen/);
  assert.match(problem(`${UPLINKS}htp: {listen: 127.0.0.1:9117}\n`).line, /unknown key 'htp', did you mean 'http'/);
});

test('parseListen', () => {
  assert.deepEqual(parseListen('0.0.0.0:1'), { host: '0.0.0.0', port: 1 });
  assert.equal(typeof parseListen('127.0.0.1:'), 'string');
  assert.equal(typeof parseListen(':9117'), 'string');
  assert.equal(typeof parseListen('127.0.0.01:9117'), 'string');
  assert.equal(typeof parseListen('127.0.0.1:123456'), 'string');
});
