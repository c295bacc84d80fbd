import { describe, expect, it } from "vitest";
import { CosmosWireError, cosmosCodeForStatus, cosmosErrorBody } from "./errors.js";

describe("CosmosWireError", () => {
  it("carries a stable code, a status (400 by default) and an optional substatus", () => {
    const e = new CosmosWireError("ERR_BAD_PATH", "bad path");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("CosmosWireError");
    expect(e.code).toBe("ERR_BAD_PATH");
    expect(e.status).toBe(400);
    expect(e.substatus).toBeUndefined();
    expect("substatus" in e).toBe(false);
    expect(e.message).toBe("bad path");

    const u = new CosmosWireError("ERR_UPSTREAM_BAD_ACCOUNT", "upstream", 502, 7);
    expect(u.status).toBe(502);
    expect(u.substatus).toBe(7);
  });
});

describe("cosmosErrorBody", () => {
  it("is the Cosmos-shaped JSON {code, message}", () => {
    expect(cosmosErrorBody("Forbidden", "denied")).toBe('{"code":"Forbidden","message":"denied"}');
    expect(JSON.parse(cosmosErrorBody("BadRequest", 'quote " and \n newline'))).toEqual({
      code: "BadRequest",
      message: 'quote " and \n newline',
    });
  });
});

describe("cosmosCodeForStatus", () => {
  it("maps statuses to the codes Cosmos DB uses", () => {
    expect(cosmosCodeForStatus(400)).toBe("BadRequest");
    expect(cosmosCodeForStatus(401)).toBe("Unauthorized");
    expect(cosmosCodeForStatus(403)).toBe("Forbidden");
    expect(cosmosCodeForStatus(404)).toBe("NotFound");
    expect(cosmosCodeForStatus(413)).toBe("RequestEntityTooLarge");
    expect(cosmosCodeForStatus(429)).toBe("TooManyRequests");
    expect(cosmosCodeForStatus(502)).toBe("BadGateway");
    expect(cosmosCodeForStatus(503)).toBe("ServiceUnavailable");
    expect(cosmosCodeForStatus(500)).toBe("InternalServerError");
    expect(cosmosCodeForStatus(418)).toBe("BadRequest");
  });
});
