// Test fixture (run inside a target namespace): answers the health probes' TCP, HTTP and DNS
// (ICMP echo is answered by the kernel). Prints "ready" once listening; runs until killed.
//   node responder.js 203.0.113.5 203.0.113.53     (one DNS socket per address: replies must come from it)
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { nxdomainReply } from '../../../src/health/dns-packet';

export const RESPONDER_PORTS = { tcp: 7, http: 80, dns: 53 };

function main(dnsAddresses: string[]): void {
  let waiting = 2 + dnsAddresses.length;
  const ready = () => {
    if (--waiting === 0) process.stdout.write('ready\n');
  };
  net.createServer((s) => s.destroy()).listen(RESPONDER_PORTS.tcp, '0.0.0.0', ready);
  http.createServer((_req, res) => res.end('ok\n')).listen(RESPONDER_PORTS.http, '0.0.0.0', ready);
  for (const address of dnsAddresses) {
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      const reply = nxdomainReply(msg);
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    });
    udp.bind(RESPONDER_PORTS.dns, address, ready);
  }
}

if (require.main === module) main(process.argv.slice(2));
