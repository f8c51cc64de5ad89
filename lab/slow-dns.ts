// A DNS probe target for the lab (run inside the internet host's namespace): answers every query
// with NXDOMAIN, after DELAY ms when the query comes from SLOW_FROM, at once otherwise.
// Usage: node slow-dns.js --address ADDR [--port 53] --delay-ms N --slow-from CIDR
// Prints "listening ADDR:PORT" when ready; runs until killed.
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { nxdomainReply } from '../src/health/dns-packet';
import { contains, isCidr } from '../src/model/ipv4';

const { values } = parseArgs({
  options: {
    address: { type: 'string' },
    port: { type: 'string', default: '53' },
    'delay-ms': { type: 'string' },
    'slow-from': { type: 'string' },
  },
});
const port = Number(values.port);
const delayMs = Number(values['delay-ms']);
const slowFrom = values['slow-from'] ?? '';
if (!values.address || !Number.isInteger(port) || !(delayMs >= 0) || !isCidr(slowFrom)) {
  console.error('usage: slow-dns --address ADDR [--port N] --delay-ms N --slow-from CIDR');
  process.exit(2);
}

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, peer) => {
  const reply = nxdomainReply(msg);
  if (!reply) return;
  const send = () => udp.send(reply, peer.port, peer.address);
  if (contains(slowFrom, peer.address)) setTimeout(send, delayMs);
  else send();
});
udp.on('error', (err) => {
  console.error(`slow-dns: ${err.message}`);
  process.exit(1);
});
udp.bind(port, values.address, () => console.log(`listening ${values.address}:${port}`));
process.on('SIGTERM', () => udp.close(() => process.exit(0)));
