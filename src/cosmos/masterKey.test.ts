import { createHmac } from "node:crypto";
import { setAuthorizationTokenHeaderUsingMasterKey } from "@azure/cosmos";
import { describe, expect, it } from "vitest";
import { rfc7231Date, signMasterKey } from "./masterKey.js";

// The worked example of the Cosmos DB REST reference ("Access control on Cosmos DB resources").
const DOC_KEY = "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==";
const DOC_HEADER = "type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d";

type SdkArgs = Parameters<typeof setAuthorizationTokenHeaderUsingMasterKey>;

function sigOf(header: string): string {
  return decodeURIComponent(header).split("&sig=")[1] ?? "";
}

describe("signMasterKey", () => {
  it("reproduces the REST reference's worked example", () => {
    const header = signMasterKey({
      verb: "GET",
      resourceType: "dbs",
      resourceLink: "dbs/ToDoList",
      date: "Thu, 27 Apr 2017 00:51:12 GMT",
      key: DOC_KEY,
    });
    // The documentation prints lower-case percent-escapes; encodeURIComponent (like the SDK) prints upper case.
    expect(header).toBe(DOC_HEADER.replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()));
    expect(decodeURIComponent(header)).toBe(decodeURIComponent(DOC_HEADER));
    expect(sigOf(header)).toBe("c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu+c+c=");
  });

  it("matches an independent HMAC computation, and accepts the key as bytes", () => {
    const key = Buffer.from(DOC_KEY, "base64");
    const date = "Mon, 01 Jan 2024 10:00:00 GMT";
    const expected = createHmac("sha256", key)
      .update("post\ndocs\ndbs/shop/colls/orders\nmon, 01 jan 2024 10:00:00 gmt\n\n")
      .digest("base64");
    const input = { verb: "POST", resourceType: "docs", resourceLink: "dbs/shop/colls/orders", date };
    expect(sigOf(signMasterKey({ ...input, key: DOC_KEY }))).toBe(expected);
    expect(signMasterKey({ ...input, key })).toBe(signMasterKey({ ...input, key: DOC_KEY }));
  });

  it("keeps the resource link's case and decoded ids (only verb, type and date are lower-cased)", () => {
    const base = { verb: "GET", resourceType: "docs", date: "Mon, 01 Jan 2024 10:00:00 GMT", key: DOC_KEY };
    expect(signMasterKey({ ...base, resourceLink: "dbs/A/colls/B/docs/C" })).not.toBe(
      signMasterKey({ ...base, resourceLink: "dbs/a/colls/b/docs/c" }),
    );
    expect(signMasterKey({ ...base, verb: "get", resourceType: "DOCS", resourceLink: "x" })).toBe(
      signMasterKey({ ...base, resourceLink: "x" }),
    );
  });

  it("agrees with the @azure/cosmos SDK's own signing for feeds, items, GET / and partitionkeydelete", async () => {
    const cases: [verb: string, type: string, link: string][] = [
      ["GET", "", ""], // account read
      ["GET", "dbs", ""], // list databases
      ["POST", "dbs", ""], // create database
      ["GET", "dbs", "dbs/shop"],
      ["POST", "docs", "dbs/shop/colls/orders"], // create / query / batch (a feed signs its parent)
      ["GET", "docs", "dbs/shop/colls/orders/docs/a 1"], // decoded id
      ["PATCH", "docs", "dbs/shop/colls/orders/docs/é/x"],
      ["GET", "pkranges", "dbs/shop/colls/orders"],
      ["POST", "colls", "dbs/shop/colls/orders"], // partitionkeydelete
      ["POST", "sprocs", "dbs/shop/colls/orders/sprocs/sp"],
      ["DELETE", "permissions", "dbs/shop/users/u1/permissions/p1"],
    ];
    for (const [verb, resourceType, resourceLink] of cases) {
      const headers: Record<string, string> = {};
      await setAuthorizationTokenHeaderUsingMasterKey(
        verb as SdkArgs[0],
        resourceLink,
        resourceType as SdkArgs[2],
        headers,
        DOC_KEY,
      );
      const date = headers["x-ms-date"];
      expect(date).toMatch(/GMT$/);
      expect(
        signMasterKey({ verb, resourceType, resourceLink, date, key: DOC_KEY }),
        `${verb} ${resourceType} ${resourceLink}`,
      ).toBe(headers.authorization);
    }
  });
});

describe("rfc7231Date", () => {
  it("formats IMF-fixdate as Cosmos DB expects", () => {
    expect(rfc7231Date(new Date(Date.UTC(2017, 3, 27, 0, 51, 12)))).toBe("Thu, 27 Apr 2017 00:51:12 GMT");
    expect(rfc7231Date(new Date(Date.UTC(2024, 0, 1, 9, 5, 3, 999)))).toBe("Mon, 01 Jan 2024 09:05:03 GMT");
  });
});
