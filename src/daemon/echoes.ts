// The notifications a cycle's own changes cause. The kernel announces every change uplinkd makes to every
// subscriber, uplinkd's own included; replanning on them only finds that the kernel is as just planned. On a
// renumbering that second cycle was half of the daemon's cycles (and of its CPU on a busy router).
import type { KernelEvent } from '../kernel/port';
import { objectIdentity, type OwnedObject } from '../model/identity';
import type { Change } from '../model/types';

/** `new <identity>` or `del <identity>`: an object's whole identity (objectIdentity) and what happened to it. */
function echoKey(action: 'new' | 'del', object: OwnedObject): string {
  return `${action} ${objectIdentity(object)}`;
}

/** The object a route, rule or nexthop notification carries; undefined for links and addresses. */
function eventObject(e: KernelEvent): OwnedObject | undefined {
  if (e.route) return { kind: 'route', route: e.route };
  if (e.rule) return { kind: 'rule', rule: e.rule };
  if (e.nexthop) return { kind: 'nexthop', nexthop: e.nexthop };
  return undefined;
}

/**
 * A multiset of the notifications expected from changes being applied: an add or replace is echoed as
 * RTM_NEW* of the object as planned, a delete as RTM_DEL* of it (include/uapi/linux/rtnetlink.h). A
 * notification consumed here left the object exactly as the plan wanted it (same kind, action and whole
 * identity), so it needs no cycle. Anything else the kernel says, side effects of our changes among them
 * (a member removed from its group, routes dropped with a nexthop), is not expected and still starts one.
 */
export class ExpectedEchoes {
  private readonly counts = new Map<string, number>();

  /** Expects one notification per change (call before sending them: the kernel may answer before the acks are read). */
  expect(changes: readonly Change[]): void {
    for (const c of changes) {
      const key = echoKey(c.op === 'del' ? 'del' : 'new', c);
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
  }

  /** Stops expecting the notification of a change the kernel refused (it sends none). */
  forget(change: Change): void {
    const key = echoKey(change.op === 'del' ? 'del' : 'new', change);
    const n = this.counts.get(key) ?? 0;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  /**
   * True when `e` is one expected notification (then no longer expected); false for anything else, and for a
   * notification whose change took other objects along silently (KernelEvent.silentEffects): that needs a look.
   */
  consume(e: KernelEvent): boolean {
    const object = eventObject(e);
    if (!object || e.silentEffects) return false;
    const key = echoKey(e.action, object);
    const n = this.counts.get(key);
    if (n === undefined) return false;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
    return true;
  }

  /**
   * Forgets every expectation: at the start of each cycle, so one left by a change that sent no notification (an
   * add the kernel answered EEXIST for, tolerated) cannot swallow another program's change later.
   */
  clear(): void {
    this.counts.clear();
  }

  /** Notifications still expected (for tests and debugging). */
  get size(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }
}
