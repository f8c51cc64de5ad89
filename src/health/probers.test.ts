import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handshakeRtt, SYN_RTO_MS } from './probers';

describe('probe RTT samples', () => {
  it('a TCP handshake is an RTT sample only when it was faster than the kernel\'s first SYN retransmission (Karn)', () => {
    assert.deepEqual(handshakeRtt(0.4), { rttMs: 0.4 });
    assert.deepEqual(handshakeRtt(SYN_RTO_MS - 1), { rttMs: SYN_RTO_MS - 1 });
    assert.deepEqual(handshakeRtt(SYN_RTO_MS), {});
    assert.deepEqual(handshakeRtt(3_000.2), {});
  });
});
