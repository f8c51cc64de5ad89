// Child program of test/lab/request-window.test.ts: runs in the network namespace it was started in
// (`ip netns exec NS node window-child.js`, WindowChildArgs as JSON on stdin), sends the route changes it is given through one
// NetlinkClient as change() requests (most without NLM_F_ACK) and prints one JSON line: the client's
// window and each change's outcome ('ok' or its errno), in change order.
import { UplinkdError } from '../../src/errors';
import type { Route } from '../../src/model/types';
import * as C from '../../src/netlink/constants';
import { ifNamesFrom } from '../../src/netlink/names';
import { encodeRoute } from '../../src/netlink/route';
import { NetlinkClient, openRouteSocket, type SocketFactory } from '../../src/netlink/socket';

export interface WindowChildArgs {
  /** Routes to add (NLM_F_CREATE|NLM_F_EXCL) or delete, in this order. */
  changes: { op: 'add' | 'del'; route: Route }[];
  /** Keep the receive buffer at the kernel's minimum (no SO_RCVBUFFORCE) with the largest window: answers must overflow it. */
  starve?: boolean;
}

export interface WindowChildResult {
  window: number;
  outcomes: string[];
  /** A request sent after everything else settled ('ok' when the client still works). */
  after: string;
}

const starved: SocketFactory = () => {
  const sock = openRouteSocket();
  sock.setRecvBufferSize(0); // the kernel's minimum (SOCK_MIN_RCVBUF)
  return Object.assign(sock, { setRecvBufferSize: () => undefined, forceRecvBufferSize: undefined, getRecvBufferSize: undefined });
};

async function main(args: WindowChildArgs): Promise<WindowChildResult> {
  const client = new NetlinkClient(args.starve ? { socket: starved, window: 4096, log: () => undefined } : {});
  const names = ifNamesFrom([]);
  const outcome = (p: Promise<void>) => p.then(() => 'ok', (e: unknown) => (e instanceof UplinkdError ? e.detail.errno ?? e.message : String(e)));
  const outcomes = await Promise.all(args.changes.map(({ op, route }) => outcome(op === 'add'
    ? client.change(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, encodeRoute(route, names))
    : client.change(C.RTM_DELROUTE, 0, encodeRoute(route, names, true)))));
  const probe: Route = { table: 250, dst: '198.18.0.0/32', type: 'unreachable', protocol: 117, scope: 'universe' };
  const after = await outcome(client.change(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, encodeRoute(probe, names)));
  const window = client.window;
  client.close();
  return { window, outcomes, after };
}

async function stdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

stdin().then((text) => main(JSON.parse(text) as WindowChildArgs)).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`window child: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
