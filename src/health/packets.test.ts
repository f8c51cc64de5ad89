import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dnsQuery, dnsResponseId, nxdomainReply, PROBE_NAME } from './dns-packet';
import { echoRequest, internetChecksum, parseIcmp } from './icmp-packet';

/** An IPv4 header (no options) in front of `payload`. */
function ipv4(src: string, dst: string, payload: Buffer, protocol = 1): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64;
  h[9] = protocol;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, payload]);
}

function icmp(type: number, code: number, rest: Buffer): Buffer {
  const b = Buffer.concat([Buffer.from([type, code, 0, 0]), rest]);
  b.writeUInt16BE(internetChecksum(b), 2);
  return b;
}

describe('ICMP packets', () => {
  it('builds an echo request whose checksum verifies', () => {
    const req = echoRequest(0x1234, 0xabcd);
    assert.equal(req[0], 8);
    assert.equal(req.readUInt16BE(4), 0x1234);
    assert.equal(req.readUInt16BE(6), 0xabcd);
    assert.equal(internetChecksum(req), 0, 'a packet with its checksum sums to zero');
    assert.notEqual(req.readUInt16BE(2), 0);
  });

  it('checksums odd lengths (RFC 1071 example)', () => {
    assert.equal(internetChecksum(Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0x220d);
    assert.equal(internetChecksum(Buffer.from([0x01])), 0xfeff);
  });

  it('reads an echo reply: id, seq, sender', () => {
    const reply = echoRequest(7, 9);
    reply[0] = 0;
    assert.deepEqual(parseIcmp(ipv4('203.0.113.5', '198.51.100.2', reply)), { kind: 'reply', id: 7, seq: 9, from: '203.0.113.5' });
  });

  it('reads an error quoting one of our requests: which probe, which target, what error, from whom', () => {
    const quoted = ipv4('198.51.100.2', '203.0.113.99', echoRequest(7, 10));
    const unreachable = icmp(3, 1, Buffer.concat([Buffer.alloc(4), quoted]));
    assert.deepEqual(parseIcmp(ipv4('198.51.100.1', '198.51.100.2', unreachable)), {
      kind: 'error', id: 7, seq: 10, from: '198.51.100.1', target: '203.0.113.99', error: 'host unreachable',
    });
    const ttl = icmp(11, 0, Buffer.concat([Buffer.alloc(4), quoted]));
    assert.equal(parseIcmp(ipv4('198.51.100.1', '198.51.100.2', ttl))?.kind, 'error');
    const odd = icmp(3, 7, Buffer.concat([Buffer.alloc(4), quoted]));
    assert.equal((parseIcmp(ipv4('198.51.100.1', '198.51.100.2', odd)) as { error: string }).error, 'unreachable (code 7)');
  });

  it('ignores what is not about an echo request', () => {
    const echoRequestIn = ipv4('203.0.113.5', '198.51.100.2', echoRequest(7, 9));
    assert.equal(parseIcmp(echoRequestIn), undefined);
    const aboutUdp = icmp(3, 3, Buffer.concat([Buffer.alloc(4), ipv4('198.51.100.2', '203.0.113.5', Buffer.alloc(8), 17)]));
    assert.equal(parseIcmp(ipv4('203.0.113.5', '198.51.100.2', aboutUdp)), undefined);
    assert.equal(parseIcmp(Buffer.alloc(10)), undefined);
    assert.equal(parseIcmp(ipv4('203.0.113.5', '198.51.100.2', Buffer.alloc(4))), undefined);
  });
});

describe('DNS probe packets', () => {
  it('encodes one recursive A question for the probe name', () => {
    const q = dnsQuery(0xbeef);
    assert.equal(q.readUInt16BE(0), 0xbeef);
    assert.equal(q.readUInt16BE(2), 0x0100);
    assert.equal(q.readUInt16BE(4), 1);
    assert.equal(q.readUInt16BE(6) + q.readUInt16BE(8) + q.readUInt16BE(10), 0);
    const labels = PROBE_NAME.split('.');
    const name = Buffer.concat(labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
    assert.deepEqual(q.subarray(12), Buffer.concat([name, Buffer.from([0, 0, 1, 0, 1])]));
  });

  it('reads the id of responses only', () => {
    const response = dnsQuery(42);
    response[2] |= 0x80;
    assert.equal(dnsResponseId(response), 42);
    assert.equal(dnsResponseId(dnsQuery(42)), undefined, 'a query is not a response');
    assert.equal(dnsResponseId(Buffer.alloc(5)), undefined);
  });

  it('the test responders answer any query with its id, as a response, NXDOMAIN', () => {
    const reply = nxdomainReply(dnsQuery(7))!;
    assert.equal(dnsResponseId(reply), 7);
    assert.equal(reply[3]! & 0x0f, 3, 'NXDOMAIN');
    assert.deepEqual(reply.subarray(4), dnsQuery(7).subarray(4), 'the question is kept');
    assert.equal(nxdomainReply(Buffer.alloc(11)), undefined, 'too short for a header');
  });

  it('refuses labels longer than 63 bytes', () => {
    assert.throws(() => dnsQuery(1, `${'a'.repeat(64)}.invalid`), /label too long/);
  });
});
