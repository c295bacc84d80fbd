import { createServer, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../../test/helpers/upstream.js";
import { discoveryUrlOf, fetchDiscovery, insecureUrlProblem } from "./discovery.js";

const ISSUER = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
const URL_ = `${ISSUER}/.well-known/openid-configuration`;

/** A fetch that answers every request with this status, body and content type. */
function answer(status: number, body: string, calls: string[] = []): typeof fetch {
  return (async (input: string | URL | Request) => {
    calls.push(String(input));
    const empty = status === 204 || status === 304;
    return new Response(empty ? null : body, { status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
}

const json = (value: unknown) => JSON.stringify(value);

/** The error message fetchDiscovery rejects with. */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return (error as Error).message;
  }
  throw new Error("expected fetchDiscovery to reject, and it resolved");
}

/** A loopback HTTP server whose answer the test controls; closed after each test. */
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
async function serve(
  respond: (res: ServerResponse) => void,
): Promise<{ origin: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    respond(res);
  });
  servers.push(server);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${port}`, requests: () => requests };
}

describe("fetchDiscovery", () => {
  it("returns the document when it names the configured issuer and an https jwks_uri", async () => {
    const doc = { issuer: ISSUER, jwks_uri: `${ISSUER.replace("/v2.0", "")}/discovery/v2.0/keys`, extra: 1 };
    const calls: string[] = [];
    await expect(
      fetchDiscovery(URL_, { expectedIssuer: ISSUER, fetch: answer(200, json(doc), calls) }),
    ).resolves.toEqual(doc);
    expect(calls).toEqual([URL_]);
  });

  it("names both issuers when the document's issuer is not the configured one (v1 against v2)", async () => {
    const v1 = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/";
    const message = await failure(
      fetchDiscovery(URL_, {
        expectedIssuer: ISSUER,
        fetch: answer(
          200,
          json({ issuer: v1, jwks_uri: "https://login.microsoftonline.com/common/discovery/keys" }),
        ),
      }),
    );
    expect(message).toContain(`names issuer "${v1}", not the configured "${ISSUER}"`);
    expect(message).toMatch(/v2\.0 and v1 issuers differ/);
  });

  it("refuses an issuer that differs only by a trailing slash or case", async () => {
    for (const issuer of [`${ISSUER}/`, ISSUER.toUpperCase()]) {
      const message = await failure(
        fetchDiscovery(URL_, {
          expectedIssuer: ISSUER,
          fetch: answer(200, json({ issuer, jwks_uri: "https://x/keys" })),
        }),
      );
      expect(message).toMatch(/names issuer/);
    }
  });

  it("refuses a document with no issuer", async () => {
    const message = await failure(
      fetchDiscovery(URL_, {
        expectedIssuer: ISSUER,
        fetch: answer(200, json({ jwks_uri: "https://x/keys" })),
      }),
    );
    expect(message).toMatch(/names issuer undefined|names issuer "undefined"/);
  });

  it("refuses any status but 200, naming it", async () => {
    for (const status of [404, 500, 503, 204]) {
      const message = await failure(
        fetchDiscovery(URL_, { expectedIssuer: ISSUER, fetch: answer(status, "nope") }),
      );
      expect(message).toBe(`the discovery document at ${URL_} answered HTTP ${status}, not 200`);
    }
  });

  it("does not follow a redirect", async () => {
    const target = await serve((res) =>
      res.writeHead(200, { "content-type": "application/json" }).end(json({ issuer: ISSUER })),
    );
    const idp = await serve((res) => res.writeHead(302, { location: `${target.origin}/doc` }).end());
    const message = await failure(
      fetchDiscovery(`${idp.origin}/.well-known/openid-configuration`, { expectedIssuer: ISSUER }),
    );
    expect(message).toMatch(/answered HTTP 302, not 200/);
    expect(target.requests()).toBe(0);
  });

  it("refuses a body that is not JSON, or JSON that is not an object", async () => {
    expect(
      await failure(
        fetchDiscovery(URL_, { expectedIssuer: ISSUER, fetch: answer(200, "<html>login</html>") }),
      ),
    ).toBe(`the discovery document at ${URL_} is not JSON`);
    for (const body of ["[]", "null", '"text"', "42"]) {
      expect(
        await failure(fetchDiscovery(URL_, { expectedIssuer: ISSUER, fetch: answer(200, body) })),
        body,
      ).toBe(`the discovery document at ${URL_} is not a JSON object`);
    }
  });

  it("refuses a document with no jwks_uri or a jwks_uri that is not a string", async () => {
    for (const jwks of [undefined, 42, ["https://x/keys"]]) {
      const message = await failure(
        fetchDiscovery(URL_, {
          expectedIssuer: ISSUER,
          fetch: answer(200, json({ issuer: ISSUER, jwks_uri: jwks })),
        }),
      );
      expect(message).toMatch(/has no jwks_uri/);
    }
  });

  it("refuses a plain-http jwks_uri on a host other than loopback", async () => {
    for (const jwksUri of [
      "http://login.example.com/keys",
      "http://10.0.0.5/keys",
      "http://localhost.evil.example/keys",
    ]) {
      const message = await failure(
        fetchDiscovery(URL_, {
          expectedIssuer: ISSUER,
          fetch: answer(200, json({ issuer: ISSUER, jwks_uri: jwksUri })),
        }),
      );
      expect(message, jwksUri).toBe(
        `the discovery document's jwks_uri "${jwksUri}" must use https (plain http only on localhost)`,
      );
    }
  });

  it("accepts a plain-http jwks_uri on loopback (local identity providers)", async () => {
    for (const jwksUri of [
      "http://127.0.0.1:9999/keys",
      "http://localhost:9999/keys",
      "http://[::1]:9999/keys",
    ]) {
      const doc = await fetchDiscovery(URL_, {
        expectedIssuer: ISSUER,
        fetch: answer(200, json({ issuer: ISSUER, jwks_uri: jwksUri })),
      });
      expect(doc.jwks_uri).toBe(jwksUri);
    }
  });

  it("refuses a plain-http discovery URL on another host without fetching it", async () => {
    const calls: string[] = [];
    const message = await failure(
      fetchDiscovery("http://idp.example.com/.well-known/openid-configuration", {
        expectedIssuer: ISSUER,
        fetch: answer(200, json({ issuer: ISSUER, jwks_uri: "https://x/keys" }), calls),
      }),
    );
    expect(message).toMatch(/the discovery URL "http:\/\/idp\.example\.com\/.* must use https/);
    expect(calls).toEqual([]);
  });

  it("gives up after the time-out when the provider never answers, and says so", async () => {
    const idp = await serve(() => {
      /* never answers */
    });
    const url = `${idp.origin}/.well-known/openid-configuration`;
    const started = performance.now();
    const message = await failure(fetchDiscovery(url, { expectedIssuer: ISSUER, timeoutMs: 150 }));
    const elapsed = performance.now() - started;
    expect(message).toBe(`the discovery document at ${url} did not arrive within 150 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1500);
  });

  it("bounds a body that starts and then stalls by the same time-out", async () => {
    const idp = await serve((res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"issuer":');
    });
    const started = performance.now();
    const message = await failure(
      fetchDiscovery(`${idp.origin}/.well-known/openid-configuration`, {
        expectedIssuer: ISSUER,
        timeoutMs: 150,
      }),
    );
    expect(performance.now() - started).toBeLessThan(1500);
    expect(message).toMatch(/not JSON|did not arrive/);
  });

  it("names the network error when the provider cannot be reached", async () => {
    const port = await freePort(); // nothing listens there
    const url = `http://127.0.0.1:${port}/.well-known/openid-configuration`;
    const message = await failure(fetchDiscovery(url, { expectedIssuer: ISSUER, timeoutMs: 2000 }));
    expect(message).toBe(`the discovery document at ${url} could not be fetched (ECONNREFUSED)`);
  });
});

describe("discoveryUrlOf", () => {
  it("appends /.well-known/openid-configuration after dropping the issuer's trailing slash", () => {
    expect(discoveryUrlOf("https://token.actions.githubusercontent.com")).toBe(
      "https://token.actions.githubusercontent.com/.well-known/openid-configuration",
    );
    expect(discoveryUrlOf("https://sts.windows.net/t/")).toBe(
      "https://sts.windows.net/t/.well-known/openid-configuration",
    );
    expect(discoveryUrlOf("https://acme.okta.com/oauth2/default//")).toBe(
      "https://acme.okta.com/oauth2/default/.well-known/openid-configuration",
    );
  });
});

describe("insecureUrlProblem", () => {
  it("accepts https anywhere and plain http on loopback only", () => {
    for (const ok of [
      "https://login.microsoftonline.com/t/discovery/v2.0/keys",
      "https://10.0.0.5/keys",
      "http://localhost:8080/keys",
      "http://127.0.0.1/keys",
      "http://[::1]:8443/keys",
    ]) {
      expect(insecureUrlProblem(ok), ok).toBeUndefined();
    }
  });

  it("refuses plain http elsewhere, other schemes, and text that is not a URL", () => {
    for (const bad of [
      "http://idp.example.com/keys",
      "http://localhost.example.com/keys",
      "http://127.0.0.1.nip.io/keys",
      "http://0.0.0.0/keys",
      "ftp://localhost/keys",
      "file:///etc/keys.json",
    ]) {
      expect(insecureUrlProblem(bad), bad).toBe(`"${bad}" must use https (plain http only on localhost)`);
    }
    expect(insecureUrlProblem("keys.json")).toBe('"keys.json" is not a URL');
  });
});
