import { describe, expect, it } from "vitest";
import { compileRequirements, type RequirementSpec, unmetRequirement } from "./requirements.js";

/** Whether claims meet one condition on `claim`. */
function meets(claim: string, spec: RequirementSpec, claims: Record<string, unknown>): boolean {
  return unmetRequirement(compileRequirements({ [claim]: spec }, "test issuer"), claims) === undefined;
}

/** The TypeError a malformed `require` map makes, or a failure when it compiles. */
function compileError(specs: unknown): TypeError {
  try {
    compileRequirements(specs as Record<string, RequirementSpec>, 'identity.issuers entry "Entra ID"');
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return error as TypeError;
  }
  throw new Error("expected compileRequirements to throw, and it compiled");
}

describe("compileRequirements: each condition form accepts and refuses", () => {
  it("a plain string equals exactly", () => {
    expect(meets("acr", "phr", { acr: "phr" })).toBe(true);
    expect(meets("acr", "phr", { acr: "pwd" })).toBe(false);
    expect(meets("acr", "phr", { acr: "PHR" })).toBe(false);
    expect(meets("acr", "phr", { acr: "phrx" })).toBe(false);
    expect(meets("acr", "phr", {})).toBe(false);
  });

  it("{equals} is the same as a plain value, for strings, numbers and booleans", () => {
    expect(meets("tid", { equals: "t1" }, { tid: "t1" })).toBe(true);
    expect(meets("tid", { equals: "t1" }, { tid: "t2" })).toBe(false);
    expect(meets("ver", { equals: 2 }, { ver: 2 })).toBe(true);
    expect(meets("ver", 2, { ver: 2 })).toBe(true);
    expect(meets("email_verified", true, { email_verified: true })).toBe(true);
    expect(meets("email_verified", { equals: true }, { email_verified: false })).toBe(false);
  });

  it("{anyOf} accepts a string claim equal to one of them or a list claim holding one", () => {
    const spec = { anyOf: ["mfa", "rsa"] };
    expect(meets("amr", spec, { amr: ["pwd", "mfa"] })).toBe(true);
    expect(meets("amr", spec, { amr: ["rsa"] })).toBe(true);
    expect(meets("amr", spec, { amr: "mfa" })).toBe(true);
    expect(meets("amr", spec, { amr: ["pwd", "otp"] })).toBe(false);
    expect(meets("amr", spec, { amr: [] })).toBe(false);
    expect(meets("amr", spec, { amr: "pwd" })).toBe(false);
    expect(meets("amr", spec, {})).toBe(false);
  });

  it("{contains} accepts a list claim holding the value or a string claim equal to it", () => {
    const spec = { contains: "c1" };
    expect(meets("acrs", spec, { acrs: ["c1"] })).toBe(true);
    expect(meets("acrs", spec, { acrs: ["c3", "c1"] })).toBe(true);
    expect(meets("acrs", spec, { acrs: "c1" })).toBe(true);
    expect(meets("acrs", spec, { acrs: ["c2"] })).toBe(false);
    expect(meets("acrs", spec, { acrs: ["c10"] })).toBe(false);
    expect(meets("acrs", spec, { acrs: "c10" })).toBe(false);
    expect(meets("acrs", spec, {})).toBe(false);
  });

  it("{matches} accepts a string claim matching the whole expression", () => {
    const spec = { matches: "refs/heads/(main|release/.+)" };
    expect(meets("ref", spec, { ref: "refs/heads/main" })).toBe(true);
    expect(meets("ref", spec, { ref: "refs/heads/release/1.2" })).toBe(true);
    expect(meets("ref", spec, { ref: "refs/heads/feature" })).toBe(false);
    expect(meets("ref", spec, {})).toBe(false);
  });

  it("every requirement of a map must be met, and the first unmet one is named", () => {
    const reqs = compileRequirements({ tid: "t1", acrs: { contains: "c1" } }, "Entra ID");
    expect(reqs.map((r) => r.claim)).toEqual(["tid", "acrs"]);
    expect(unmetRequirement(reqs, { tid: "t1", acrs: ["c1"] })).toBeUndefined();
    const wrongTenant = unmetRequirement(reqs, { tid: "t2", acrs: ["c1"] });
    expect(wrongTenant?.requirement.claim).toBe("tid");
    expect(wrongTenant?.requirement.description).toBe('tid equals "t1"');
    expect(wrongTenant?.found).toBe('"t2"');
    const noContext = unmetRequirement(reqs, { tid: "t1" });
    expect(noContext?.requirement.description).toBe('acrs contains "c1"');
    expect(noContext?.found).toBe("absent");
  });

  it("describes each form readably, for messages and the doctor", () => {
    const reqs = compileRequirements(
      {
        acr: "phr",
        amr: { anyOf: ["hwk", "mfa"] },
        acrs: { contains: "c1" },
        repository: { matches: "acme/shop" },
      },
      "x",
    );
    expect(reqs.map((r) => r.description)).toEqual([
      'acr equals "phr"',
      'amr is or contains any of "hwk", "mfa"',
      'acrs contains "c1"',
      "repository matches /^(?:acme/shop)$/",
    ]);
  });

  it("shows the found value as JSON (strings quoted), cut short when long", () => {
    const reqs = compileRequirements({ repository: "acme/shop" }, "x");
    const unmet = unmetRequirement(reqs, { repository: "a".repeat(500) });
    expect(unmet?.found.length).toBeLessThan(100);
    expect(unmet?.found).toContain("…");
    const acr = compileRequirements({ acr: "phr" }, "x");
    // Shown as JSON, so a list, a number or a boolean cannot be mistaken for the string required.
    expect(unmetRequirement(acr, { acr: ["phr"] })?.found).toBe('["phr"]');
    expect(unmetRequirement(acr, { acr: "pwd" })?.found).toBe('"pwd"');
    const ver = compileRequirements({ ver: "2" }, "x");
    expect(unmetRequirement(ver, { ver: 2 })?.found).toBe("2");
    expect(unmetRequirement(ver, { ver: true })?.found).toBe("true");
    expect(unmetRequirement(ver, { ver: null })?.found).toBe("null");
    const long = unmetRequirement(acr, { acr: Array.from({ length: 50 }, (_, i) => `value-${i}`) });
    expect(long?.found.length).toBeLessThanOrEqual(81);
    expect(long?.found.endsWith("…")).toBe(true);
  });

  it("an absent or empty map requires nothing", () => {
    expect(compileRequirements(undefined, "x")).toEqual([]);
    expect(compileRequirements({}, "x")).toEqual([]);
    expect(unmetRequirement([], {})).toBeUndefined();
  });
});

describe("compileRequirements: matches are anchored to the whole value", () => {
  const repo = { matches: "acme/shop" };

  it("acme/shop does not match acme/shop-evil, evil-acme/shop or acme/shop/x", () => {
    expect(meets("repository", repo, { repository: "acme/shop" })).toBe(true);
    for (const other of [
      "acme/shop-evil",
      "evil-acme/shop",
      "xacme/shop",
      "acme/shop/x",
      "acme/shop\n",
      "",
    ]) {
      expect(meets("repository", repo, { repository: other }), other).toBe(false);
    }
  });

  it("an alternation is anchored as a whole, not only its first and last branch", () => {
    const spec = { matches: "acme/shop|acme/api" };
    expect(meets("repository", spec, { repository: "acme/shop" })).toBe(true);
    expect(meets("repository", spec, { repository: "acme/api" })).toBe(true);
    expect(meets("repository", spec, { repository: "acme/shop-evil" })).toBe(false);
    expect(meets("repository", spec, { repository: "evil/acme/api" })).toBe(false);
    expect(meets("repository", spec, { repository: "acme/shop|acme/api" })).toBe(false);
  });

  it("a wildcard stays inside the anchors", () => {
    const spec = { matches: "acme/.*" };
    expect(meets("repository", spec, { repository: "acme/shop-evil" })).toBe(true);
    expect(meets("repository", spec, { repository: "evil/acme/shop" })).toBe(false);
  });

  it("anchors written by the administrator still work", () => {
    expect(meets("ref", { matches: "^refs/heads/main$" }, { ref: "refs/heads/main" })).toBe(true);
    expect(meets("ref", { matches: "^refs/heads/main$" }, { ref: "refs/heads/main2" })).toBe(false);
  });

  it("a regular expression is compiled once, with no state carried between tokens", () => {
    const reqs = compileRequirements({ sub: { matches: "repo:acme/shop:.+" } }, "x");
    for (let i = 0; i < 3; i++) {
      expect(unmetRequirement(reqs, { sub: "repo:acme/shop:ref:refs/heads/main" })).toBeUndefined();
    }
  });
});

describe("compileRequirements: no type confusion", () => {
  it("a list claim does not equal a string condition", () => {
    expect(meets("tid", "t1", { tid: ["t1"] })).toBe(false);
    expect(meets("acr", { equals: "phr" }, { acr: ["phr"] })).toBe(false);
  });

  it("a list or an object claim never matches a regular expression", () => {
    expect(meets("repository", { matches: "acme/shop" }, { repository: ["acme/shop"] })).toBe(false);
    expect(meets("repository", { matches: ".*" }, { repository: { name: "acme/shop" } })).toBe(false);
    expect(meets("repository", { matches: ".*" }, { repository: null })).toBe(false);
    expect(meets("repository", { matches: ".*" }, {})).toBe(false);
  });

  it("a number is not the string of its digits, and the reverse", () => {
    expect(meets("ver", 2, { ver: "2" })).toBe(false);
    expect(meets("ver", "2", { ver: 2 })).toBe(false);
    expect(meets("ver", { anyOf: [1, 2] }, { ver: "2" })).toBe(false);
    expect(meets("ver", { anyOf: ["2"] }, { ver: 2 })).toBe(false);
    expect(meets("acrs", { contains: 1 }, { acrs: ["1"] })).toBe(false);
    expect(meets("run_attempt", { matches: "\\d+" }, { run_attempt: 1 })).toBe(false);
  });

  it("a boolean is not its string, and truthy values are not true", () => {
    expect(meets("email_verified", true, { email_verified: "true" })).toBe(false);
    expect(meets("email_verified", true, { email_verified: 1 })).toBe(false);
    expect(meets("email_verified", false, {})).toBe(false);
  });

  it("{anyOf} and {contains} do not look inside nested lists or objects", () => {
    expect(meets("amr", { anyOf: ["mfa"] }, { amr: [["mfa"]] })).toBe(false);
    expect(meets("amr", { anyOf: ["mfa"] }, { amr: { mfa: true } })).toBe(false);
    expect(meets("acrs", { contains: "c1" }, { acrs: [["c1"]] })).toBe(false);
    expect(meets("acrs", { contains: "c1" }, { acrs: { 0: "c1", length: 1 } })).toBe(false);
  });

  it("a string claim is not searched for a substring", () => {
    expect(meets("acrs", { contains: "c1" }, { acrs: "c1 c2" })).toBe(false);
    expect(meets("amr", { anyOf: ["mfa"] }, { amr: "mfa,pwd" })).toBe(false);
  });
});

describe("compileRequirements: a malformed condition is a TypeError naming the issuer and the claim", () => {
  const cases: [string, unknown, RegExp][] = [
    [
      "a list where a value is expected",
      { amr: ["mfa", "hwk"] },
      /require\.amr: expected a value, or one of/,
    ],
    ["null", { acr: null }, /require\.acr: expected a value/],
    ["an empty object", { acr: {} }, /require\.acr: give exactly one of .* \(found none\)/],
    [
      "two forms at once",
      { acr: { equals: "phr", matches: "p.*" } },
      /require\.acr: give exactly one of .*found equals, matches/,
    ],
    ["an unknown form", { acr: { startsWith: "p" } }, /require\.acr: unknown condition "startsWith"/],
    [
      "equals with an object",
      { tid: { equals: { a: 1 } } },
      /require\.tid\.equals: expected a string, number or boolean/,
    ],
    [
      "equals with a list",
      { tid: { equals: ["t1"] } },
      /require\.tid\.equals: expected a string, number or boolean/,
    ],
    ["anyOf with a string", { amr: { anyOf: "mfa" } }, /require\.amr\.anyOf: expected a non-empty list/],
    ["anyOf empty", { amr: { anyOf: [] } }, /require\.amr\.anyOf: expected a non-empty list/],
    [
      "anyOf with an object member",
      { amr: { anyOf: ["mfa", { x: 1 }] } },
      /require\.amr\.anyOf: expected a non-empty list/,
    ],
    ["anyOf with a boolean member", { amr: { anyOf: [true] } }, /require\.amr\.anyOf/],
    ["contains with a list", { acrs: { contains: ["c1"] } }, /require\.acrs\.contains: expected a string/],
    ["contains with a boolean", { acrs: { contains: true } }, /require\.acrs\.contains: expected a string/],
    [
      "matches empty",
      { repository: { matches: "" } },
      /require\.repository\.matches: expected a regular expression/,
    ],
    [
      "matches with a number",
      { repository: { matches: 1 } },
      /require\.repository\.matches: expected a regular expression/,
    ],
    [
      "an invalid regular expression",
      { repository: { matches: "acme/(shop" } },
      /require\.repository\.matches: "acme\/\(shop" is not a valid regular expression/,
    ],
    ["an empty claim name", { "": "x" }, /require\.: the claim name is empty/],
  ];
  for (const [what, specs, message] of cases) {
    it(`refuses ${what}`, () => {
      const error = compileError(specs);
      expect(error.message).toMatch(message);
      expect(error.message).toContain('identity.issuers entry "Entra ID"');
    });
  }

  it("refuses a require that is not a map", () => {
    expect(compileError(["amr"]).message).toMatch(/require must be a map of claim name/);
    expect(compileError("amr").message).toMatch(/require must be a map of claim name/);
    expect(compileError(null).message).toMatch(/require must be a map of claim name/);
  });

  it("names the claim of the bad condition, not the first one of the map", () => {
    const error = compileError({ acr: "phr", tid: "t1", amr: { anyOf: [] } });
    expect(error.message).toMatch(/require\.amr/);
    expect(error.message).not.toMatch(/require\.(acr|tid)\b/);
  });
});
