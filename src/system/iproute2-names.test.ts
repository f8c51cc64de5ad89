import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRtProtos, renderRtTables } from './iproute2-names';
import { UplinkdError } from '../errors';

test('rt_tables entries sorted by number, one "NUMBER<TAB>NAME" per line', () => {
  const text = renderRtTables([
    { number: 1002, name: 'uplinkd-wan2' },
    { number: 1000, name: 'uplinkd' },
    { number: 1001, name: 'uplinkd-wan1' },
  ]);
  assert.equal(text, '1000\tuplinkd\n1001\tuplinkd-wan1\n1002\tuplinkd-wan2\n');
});

test('rt_protos entry', () => {
  assert.equal(renderRtProtos([{ number: 117, name: 'uplinkd' }]), '117\tuplinkd\n');
  assert.equal(renderRtProtos([]), '');
});

test('unusable names and numbers are refused', () => {
  const bad: [() => string, string][] = [
    [() => renderRtTables([{ number: 254, name: 'x' }]), 'reserved number'],
    [() => renderRtTables([{ number: 0, name: 'x' }]), 'zero'],
    [() => renderRtTables([{ number: 2 ** 32, name: 'x' }]), 'too large'],
    [() => renderRtTables([{ number: 1000, name: 'main' }]), 'builtin name'],
    [() => renderRtTables([{ number: 1000, name: 'two words' }]), 'space'],
    [() => renderRtTables([{ number: 1000, name: '1000x' }]), 'leading digit'],
    [() => renderRtTables([{ number: 1000, name: 'a' }, { number: 1000, name: 'b' }]), 'duplicate number'],
    [() => renderRtTables([{ number: 1000, name: 'a' }, { number: 1001, name: 'a' }]), 'duplicate name'],
    [() => renderRtProtos([{ number: 256, name: 'x' }]), 'proto too large'],
    [() => renderRtProtos([{ number: 117, name: 'dhcp' }]), 'builtin proto'],
  ];
  for (const [fn, why] of bad) assert.throws(fn, UplinkdError, why);
});
