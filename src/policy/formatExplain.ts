import type { ExplainResult, ExplainRule } from "./explain.js";

/**
 * Formats an {@link ExplainResult} for a terminal, one fact a line.
 *
 * @example
 * ```ts
 * console.log(formatExplain(explain(policy, { subject: "alice", action: "read", resource: "/dbs/shop" })));
 * // DENY read on /dbs/shop
 * //   principal  alice (no groups)
 * //   reason     principal [alice] holds no role (denied [read] on [/dbs/shop])
 * //   ...
 * ```
 */
export function formatExplain(result: ExplainResult): string {
  const { principal, decision } = result;
  const groups = principal.groups.length === 0 ? "no groups" : `groups: ${principal.groups.join(", ")}`;
  const lines = [
    `${decision.effect.toUpperCase()} ${result.action} on ${result.resource}`,
    `  principal  ${principal.sub} (${groups})`,
    `  reason     ${decision.reason}`,
  ];
  if (result.matched) {
    const note =
      result.via === "metadata-ancestor" ? " (metadata discovery: resource is above the scope)" : "";
    lines.push(`  matched    ${rule(result.matched)}${note}`);
  }
  if (result.roles.length === 0) {
    lines.push("  roles held (none)");
  } else {
    lines.push("  roles held");
    for (const r of result.roles)
      lines.push(`    ${r.name}${r.builtIn ? " (built-in)" : ""}  via ${r.via.join(", ")}`);
  }
  if (result.close.length > 0) {
    lines.push("  close rules");
    for (const c of result.close) lines.push(`    ${rule(c)}: ${c.why}`);
  }
  if (result.wouldAllow.length > 0) {
    lines.push("  would be allowed by (roles not held)");
    for (const w of result.wouldAllow) {
      const members = w.members.length === 0 ? "no members" : `members: ${w.members.join(", ")}`;
      lines.push(`    ${rule(w)}; ${members}`);
    }
  }
  lines.push(`  policy     ${result.policyVersion}`);
  return lines.join("\n");
}

function rule(r: ExplainRule): string {
  return `role ${r.role} rule ${r.rule}: allow [${r.allow.join(", ")}] on ${r.on.join(", ")}`;
}
