import { describe, expect, it } from "vitest";
import { rewriteAccount } from "./account.js";
import { CosmosWireError } from "./errors.js";

const ACCOUNT = {
  _self: "",
  id: "acct",
  _rid: "acct.documents.azure.com",
  media: "//media/",
  addresses: "//addresses/",
  _dbs: "//dbs/",
  writableLocations: [
    { name: "West US", databaseAccountEndpoint: "https://acct-westus.documents.azure.com:443/" },
  ],
  readableLocations: [
    { name: "West US", databaseAccountEndpoint: "https://acct-westus.documents.azure.com:443/" },
    { name: "East US", databaseAccountEndpoint: "https://acct-eastus.documents.azure.com:443/" },
  ],
  thinClientWritableLocations: [
    { name: "West US", databaseAccountEndpoint: "https://acct-westus.documents.azure.com:10250/" },
  ],
  thinClientReadableLocations: [],
  enableMultipleWriteLocations: false,
  userConsistencyPolicy: { defaultConsistencyLevel: "Session" },
};

describe("rewriteAccount", () => {
  it("points every regional endpoint at the public URL, keeping region names and other fields", () => {
    const out = JSON.parse(rewriteAccount(Buffer.from(JSON.stringify(ACCOUNT)), "https://localhost:8081"));
    const gw = "https://localhost:8081/";
    expect(out).toEqual({
      ...ACCOUNT,
      writableLocations: [{ name: "West US", databaseAccountEndpoint: gw }],
      readableLocations: [
        { name: "West US", databaseAccountEndpoint: gw },
        { name: "East US", databaseAccountEndpoint: gw },
      ],
      thinClientWritableLocations: [{ name: "West US", databaseAccountEndpoint: gw }],
      thinClientReadableLocations: [],
    });
  });

  it("keeps a trailing slash once and accepts a string body", () => {
    const body = JSON.stringify({
      writableLocations: [{ name: "r", databaseAccountEndpoint: "https://x/" }],
    });
    expect(rewriteAccount(body, "https://gw.example:8081/")).toBe(
      '{"writableLocations":[{"name":"r","databaseAccountEndpoint":"https://gw.example:8081/"}]}',
    );
  });

  it("leaves an account without locations as it is", () => {
    expect(JSON.parse(rewriteAccount('{"id":"localhost"}', "https://gw/"))).toEqual({ id: "localhost" });
  });

  it("refuses malformed upstream answers with ERR_UPSTREAM_BAD_ACCOUNT (502)", () => {
    for (const body of [
      "",
      "not json",
      "[]",
      "null",
      "42",
      '{"readableLocations":{}}',
      '{"writableLocations":[1]}',
    ]) {
      let err: unknown;
      try {
        rewriteAccount(body, "https://gw/");
      } catch (e) {
        err = e;
      }
      expect(err, body).toBeInstanceOf(CosmosWireError);
      expect((err as CosmosWireError).code).toBe("ERR_UPSTREAM_BAD_ACCOUNT");
      expect((err as CosmosWireError).status).toBe(502);
    }
  });
});
