// The `http:` section: where `uplinkd run` serves its read-only status page and metrics.
import { isIpv4 } from '../model/ipv4';
import type { Field, Reader } from './reader';
import type { HttpListen } from './types';
import { quoted } from './values';

const HTTP_KEYS = ['listen'];
const EXPECTED = 'host:port with an IPv4 address or localhost and a port from 1 to 65535, e.g. 127.0.0.1:9117';

/** Reads `http: {listen: "HOST:PORT"}`; undefined (and reported) when invalid. */
export function readHttp(r: Reader, f: Field): { listen: HttpListen } | undefined {
  const fields = r.map(f, HTTP_KEYS);
  if (!fields) return undefined;
  const field = r.required(f, fields, 'listen', EXPECTED);
  const text = field && r.string(field, EXPECTED);
  if (!field || text === undefined) return undefined;
  const parsed = parseListen(text);
  if (typeof parsed === 'string') {
    r.report(field.at, field.path, `${quoted(text)}: ${parsed} (expected ${EXPECTED})`);
    return undefined;
  }
  return { listen: parsed };
}

/** "HOST:PORT" -> HttpListen, or what is wrong with it. */
export function parseListen(text: string): HttpListen | string {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return 'no port';
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host !== 'localhost' && !isIpv4(host)) return `${quoted(host)} is not an IPv4 address or localhost`;
  if (!/^[0-9]{1,5}$/.test(portText)) return `${quoted(portText)} is not a port number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is out of range`;
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}
