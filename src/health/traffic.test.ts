import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetDev } from './traffic';

const SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1200      12    0    0    0     0          0         0     1200      12    0    0    0     0       0          0
   if1: 9876543   65432    0    3    0     0          0         0  1234567   54321    0    0    0     0       0          0
garbage line
`;

describe('parseNetDev', () => {
  it('reads rx and tx packets per interface', () => {
    const m = parseNetDev(SAMPLE);
    assert.deepEqual(m.get('if1'), { rxPackets: 65432, txPackets: 54321 });
    assert.deepEqual(m.get('lo'), { rxPackets: 12, txPackets: 12 });
    assert.equal(m.size, 2);
  });
});
