import { describe, expect, it } from "vitest";
import { APPROVAL_REQUIRED_SUBSTATUS } from "../agents/contract.js";
import type { ApprovalRecord } from "../approvals/approvalStore.js";
import { approvalRequiredMessage } from "../approvals/gate.js";
import { GatewayCredentialError } from "../client/errors.js";
import { CliError } from "./io.js";
import { AgentTokenError, approvalOf, describeFailure, resolveSettings } from "./mcp.js";

const ctx = { gateway: "http://localhost:8080", grant: "gr_abc", agent: "reporter" };

/** An error as @azure/cosmos throws it for a Cosmos-shaped error response. */
function sdkError(code: number, message: string, substatus?: number) {
  const err = new Error(message) as Error & { code: number; substatus?: number; body: unknown };
  err.code = code;
  if (substatus !== undefined) err.substatus = substatus;
  err.body = { code: "Forbidden", message };
  return err;
}

function record(): ApprovalRecord {
  return {
    id: "apr_Q2xhdWRlQ2xhdWRl",
    operation: {
      method: "DELETE",
      resource: "/dbs/shop/colls/orders/docs/o1",
      operation: "item.delete",
      actions: ["delete"],
      partitionKey: '["c1"]',
      body: null,
      bodySha256: "",
      person: "admin",
      agent: "agent:reporter",
    },
    operationHash: "0".repeat(64),
    status: "pending",
    approvers: "self",
    quorum: 1,
    rule: 0,
    createdAt: 0,
    expiresAt: 3_600_000,
    endedAt: null,
    denial: null,
    votes: [],
  };
}

describe("approvalOf: the approval a 403/5302 names", () => {
  it("reads the ID and URL from the gateway's own message", () => {
    const url = "http://localhost:8080/console/#/approvals/apr_Q2xhdWRlQ2xhdWRl";
    const err = sdkError(403, approvalRequiredMessage(record(), url), APPROVAL_REQUIRED_SUBSTATUS);
    expect(approvalOf(err)).toEqual({ id: "apr_Q2xhdWRlQ2xhdWRl", url, message: err.message });
  });

  it("reads them whatever the wording around them", () => {
    const err = sdkError(
      403,
      "approval required: this item.delete on /x needs approval by admin: approval ID apr_AbC-d_12. Approve it at https://gw.example.com/console/#/approvals/apr_AbC-d_12 and then retry",
      APPROVAL_REQUIRED_SUBSTATUS,
    );
    expect(approvalOf(err)).toMatchObject({
      id: "apr_AbC-d_12",
      url: "https://gw.example.com/console/#/approvals/apr_AbC-d_12",
    });
  });

  it("prefers structured fields when the body has them", () => {
    const err = sdkError(403, "approval required", APPROVAL_REQUIRED_SUBSTATUS);
    err.body = {
      code: "Forbidden",
      message: "approval required",
      approval: { id: "apr_x1", url: "https://g/a" },
    };
    expect(approvalOf(err)).toMatchObject({ id: "apr_x1", url: "https://g/a" });
  });

  it("reads an ID without a URL (an approval used or expired meanwhile), and neither when none was made", () => {
    const used = sdkError(
      403,
      "approval apr_Q2xhdWRlQ2xhdWRl is used: this request needs a new approval; retry it to ask for one.",
      APPROVAL_REQUIRED_SUBSTATUS,
    );
    expect(approvalOf(used)).toMatchObject({ id: "apr_Q2xhdWRlQ2xhdWRl", url: null });
    const tooMany = sdkError(
      403,
      "this item.delete on /dbs/shop/colls/orders/docs/o1 needs approval, but admin already has 20 pending approvals (approvals.maxPending): decide or deny some of them",
      APPROVAL_REQUIRED_SUBSTATUS,
    );
    expect(approvalOf(tooMany)).toMatchObject({ id: null, url: null });
  });

  it("is undefined for any other error", () => {
    expect(approvalOf(sdkError(403, "approval ID apr_x; approve it at http://x/", 5301))).toBeUndefined();
    expect(approvalOf(sdkError(401, "approval ID apr_x", APPROVAL_REQUIRED_SUBSTATUS))).toBeUndefined();
    expect(approvalOf(new Error("boom"))).toBeUndefined();
    expect(approvalOf(undefined)).toBeUndefined();
  });
});

describe("describeFailure: tool error texts that say what happened and what to do", () => {
  it("an operation outside the grant: names the agent and the grant, says not to retry", () => {
    const text = describeFailure(sdkError(403, "outside grant gr_abc: no create", 5301), ctx);
    expect(text).toMatch(/^Refused by the gateway \(403\/5301\)/);
    expect(text).toContain("gr_abc");
    expect(text).toMatch(/Retrying will not help/);
  });

  it("a denied approval is not mistaken for a grant refusal", () => {
    const text = describeFailure(
      sdkError(
        403,
        "approval apr_1234567 for this item.delete on /x was denied by admin; the same operation is refused",
        5301,
      ),
      ctx,
    );
    expect(text).toMatch(/^An approver denied this operation/);
  });

  it("a refused token (revoked grant) at the data plane", () => {
    const text = describeFailure(sdkError(401, "grant gr_abc is revoked"), ctx);
    expect(text).toMatch(/did not accept the agent's token \(401\)/);
    expect(text).toMatch(/revoked/);
    expect(text).toMatch(/Do not retry/);
  });

  it("the token endpoint refusing the grant, being unreachable, or the key being unusable", () => {
    const refused = new AgentTokenError(
      new GatewayCredentialError(
        "ERR_AGENT_REFUSED",
        "the gateway refused agent grant gr_abc: invalid_client",
        {
          oauthError: "invalid_client",
        },
      ),
    );
    expect(describeFailure(refused, ctx)).toMatch(
      /^The gateway refused to give agent reporter a token for grant gr_abc/,
    );
    const down = new AgentTokenError(
      new GatewayCredentialError(
        "ERR_TOKEN_ENDPOINT",
        "cannot reach the discovery endpoint http://localhost:8080/x: ECONNREFUSED",
        {
          cause: Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } }),
        },
      ),
    );
    expect(describeFailure(down, ctx)).toMatch(
      /^Cannot reach the gateway at http:\/\/localhost:8080 to get the agent's token/,
    );
    expect(describeFailure(down, ctx)).toMatch(/may be down/);
    const key = new AgentTokenError(
      new GatewayCredentialError("ERR_AGENT_KEY", "the agent key file /k is accessible by other users"),
    );
    expect(describeFailure(key, ctx)).toMatch(/^The agent cannot sign its token requests/);
  });

  it("network and TLS failures at the data plane", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8081"), { code: "ECONNREFUSED" });
    expect(describeFailure(refused, ctx, "https://localhost:8081")).toMatch(
      /^Cannot reach the gateway's data plane https:\/\/localhost:8081/,
    );
    const tls = Object.assign(new Error("self-signed certificate in certificate chain"), {
      code: "SELF_SIGNED_CERT_IN_CHAIN",
    });
    const text = describeFailure(tls, ctx, "https://localhost:8081");
    expect(text).toMatch(/--ca/);
    expect(text).toMatch(/NODE_EXTRA_CA_CERTS/);
  });

  it("other statuses", () => {
    expect(describeFailure(sdkError(404, "Resource Not Found"), ctx)).toMatch(/^Not found \(404\)/);
    expect(describeFailure(sdkError(409, "Conflict"), ctx)).toMatch(/upsert_item/);
    expect(describeFailure(sdkError(429, "Too many requests"), ctx)).toMatch(/throttled/);
    expect(describeFailure(sdkError(503, "upstream down"), ctx)).toMatch(
      /^The gateway or the database failed \(503\)/,
    );
  });
});

describe("resolveSettings", () => {
  const env = { XDG_CONFIG_HOME: "/home/ada/.config" };

  it("fills in the defaults: the local gateway and the agent's key file", () => {
    expect(resolveSettings({ agent: "reporter", grant: "gr_1" }, env)).toEqual({
      agent: "reporter",
      grant: "gr_1",
      gateway: "http://localhost:8080",
      endpoint: undefined,
      keyFile: "/home/ada/.config/cosmosgate/agents/reporter.jwk",
      ca: undefined,
      timeoutMs: 45_000,
    });
    expect(
      resolveSettings(
        { agent: "reporter" },
        { ...env, COSMOSGATE_GRANT: "gr_2", COSMOSGATE_GATEWAY: "https://G.example.com/" },
      ),
    ).toMatchObject({ grant: "gr_2", gateway: "https://g.example.com" });
  });

  it("refuses bad options with usage errors (exit code 2)", () => {
    const bad: [object, RegExp][] = [
      [{ grant: "gr_1" }, /--agent NAME is required/],
      [{ agent: "Bad Name", grant: "gr_1" }, /not an agent name/],
      [{ agent: "reporter" }, /--grant ID is required/],
      [{ agent: "reporter", grant: "gr_1", gateway: "http://gateway.example.com" }, /plain HTTP/],
      [{ agent: "reporter", grant: "gr_1", endpoint: "http://localhost:8081" }, /https:\/\//],
      [{ agent: "reporter", grant: "gr_1", ca: "/nonexistent/ca.pem" }, /cannot read --ca/],
      [{ agent: "reporter", grant: "gr_1", timeout: "0" }, /--timeout/],
    ];
    for (const [opts, message] of bad) {
      let caught: unknown;
      try {
        resolveSettings(opts, env);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(opts)).toBeInstanceOf(CliError);
      expect((caught as CliError).exitCode).toBe(2);
      expect((caught as CliError).message).toMatch(message);
    }
  });
});
