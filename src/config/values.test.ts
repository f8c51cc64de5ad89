import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, ifnameProblem, isHostname, parseDuration, tableNameProblem } from './values';

test('parseDuration reads ms, s, m, h and fractions', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1s'), 1000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('1.1s'), 1100);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('0ms'), 0);
  for (const bad of ['', '1', '1 sec', '-1s', '1.5ms', 's', '1d', '1e3ms']) assert.equal(parseDuration(bad), undefined, bad);
});

test('tableNameProblem accepts iproute2 names and rejects reserved or malformed ones', () => {
  for (const ok of ['isp1', 'a', 'ISP_2.b-c', 'x'.repeat(32)]) assert.equal(tableNameProblem(ok), undefined, ok);
  for (const bad of ['1isp', '123', 'main', 'Local', 'default', 'unspec', 'a b', 'x'.repeat(33), '', 'isp/1'])
    assert.notEqual(tableNameProblem(bad), undefined, bad);
});

test('ifnameProblem follows the kernel rules', () => {
  for (const ok of ['if1', 'vlan102', 'eth0.102', 'x'.repeat(15), 'wg-home']) assert.equal(ifnameProblem(ok), undefined, ok);
  for (const bad of ['x'.repeat(16), 'a/b', 'a:b', 'a b', '.', '..']) assert.notEqual(ifnameProblem(bad), undefined, bad);
});

test('isHostname accepts DNS names and rejects mistyped addresses', () => {
  for (const ok of ['example.com', 'probe-1.example.net', 'localhost', 'a.b.c.']) assert.equal(isHostname(ok), true, ok);
  for (const bad of ['300.1.1.1', '1.2.3', '-bad.example', 'bad-.example', 'a..b', 'under_score.example', ''])
    assert.equal(isHostname(bad), false, bad);
});

test('closest suggests only near misses', () => {
  const keys = ['name', 'interface', 'gateway', 'address', 'table'];
  assert.equal(closest('gatway', keys), 'gateway');
  assert.equal(closest('adress', keys), 'address');
  assert.equal(closest('Interface', keys), 'interface');
  assert.equal(closest('mtu', keys), undefined);
  assert.equal(closest('completely_different', keys), undefined);
});
