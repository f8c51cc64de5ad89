// Policies as `plan` and `status` print them (src/plan/policies.ts computes them).
import type { PolicyStatus } from '../plan/policies';
import { formatRule } from '../model/text';

/** One line per policy, "policy NAME: UPLINK (why)", and with `withRules` its rules indented below. */
export function policyLines(policies: readonly PolicyStatus[], withRules: boolean): string[] {
  const out: string[] = [];
  for (const p of policies) {
    const now = p.action === 'uplink' ? p.uplink! : p.action;
    out.push(`policy ${p.name}: ${now} (${p.reason})`);
    if (withRules) out.push(...(p.rules.length > 0 ? p.rules.map((r) => `    ip rule ${formatRule(r)}`) : ['    (no rules: balanced)']));
  }
  return out;
}
