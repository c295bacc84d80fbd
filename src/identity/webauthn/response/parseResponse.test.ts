import { describe, expect, it } from "vitest";
import { WebAuthnError } from "../errors.js";
import { parseResponse } from "./parseResponse.js";

const registration = {
  id: "AAEC",
  rawId: "AAEC",
  type: "public-key",
  response: { clientDataJSON: "e30", attestationObject: "oA", transports: ["usb"] },
  clientExtensionResults: {},
};
const authentication = {
  id: "AAEC",
  rawId: "AAEC",
  type: "public-key",
  response: { clientDataJSON: "e30", authenticatorData: "AA", signature: "AA", userHandle: "AQ" },
  clientExtensionResults: {},
};

function refusal(fn: () => unknown): WebAuthnError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WebAuthnError);
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_MALFORMED", status: 400 });
    return error as WebAuthnError;
  }
  throw new Error("expected a WebAuthnError");
}

describe("parseResponse", () => {
  it("accepts well-formed responses, drops unknown members and padding, reads null/'' userHandle as absent", () => {
    expect(parseResponse("registration", { ...registration, extra: 1 })).not.toHaveProperty("extra");
    const padded = parseResponse("authentication", {
      ...authentication,
      response: { ...authentication.response, signature: "AA==" },
    });
    expect(padded.response.signature).toBe("AA");
    for (const userHandle of [null, ""]) {
      const parsed = parseResponse("authentication", {
        ...authentication,
        response: { ...authentication.response, userHandle },
      });
      expect(parsed.response.userHandle).toBeUndefined();
    }
  });

  it.each([
    ["a string", "hello", /must be a JSON object/],
    ["an array", [], /must be a JSON object/],
    ["null", null, /must be a JSON object/],
  ])("refuses %s", (_name, input, message) => {
    expect(refusal(() => parseResponse("authentication", input)).message).toMatch(message);
  });

  it("refuses malformed base64url, naming the member", () => {
    const error = refusal(() =>
      parseResponse("authentication", {
        ...authentication,
        response: { ...authentication.response, signature: "a+b/" },
      }),
    );
    expect(error.message).toMatch(/response\.signature is not base64url/);
    expect(error.message).toMatch(/send the credential exactly as the browser returned it/);
  });

  it("refuses wrong JSON types", () => {
    expect(
      refusal(() => parseResponse("registration", { ...registration, id: 42, rawId: 42 })).message,
    ).toMatch(/^the registration response is malformed: id expected a base64url string/);
    expect(
      refusal(() => parseResponse("registration", { ...registration, type: "password" })).message,
    ).toMatch(/type must be "public-key"/);
    expect(refusal(() => parseResponse("registration", { ...registration, response: "x" })).message).toMatch(
      /response expected an object/,
    );
    expect(
      refusal(() =>
        parseResponse("registration", {
          ...registration,
          response: { ...registration.response, transports: "usb" },
        }),
      ).message,
    ).toMatch(/response\.transports expected an array/);
    expect(
      refusal(() => parseResponse("authentication", { ...authentication, rawId: "AAED" })).message,
    ).toMatch(/id and rawId must be the same/);
    expect(
      refusal(() =>
        parseResponse("authentication", { ...authentication, response: { clientDataJSON: "e30" } }),
      ).message,
    ).toMatch(/response\.authenticatorData/);
  });

  it("refuses oversize input, as a whole and per member", () => {
    const huge = {
      ...registration,
      response: { ...registration.response, attestationObject: "A".repeat(70_000) },
    };
    expect(refusal(() => parseResponse("registration", huge)).message).toMatch(/more than the 65536 allowed/);
    const longSignature = {
      ...authentication,
      response: { ...authentication.response, signature: "A".repeat(4000) },
    };
    expect(refusal(() => parseResponse("authentication", longSignature)).message).toMatch(
      /response\.signature is longer than 2048 characters/,
    );
    const longId = "A".repeat(1400);
    expect(
      refusal(() => parseResponse("authentication", { ...authentication, id: longId, rawId: longId }))
        .message,
    ).toMatch(/id is longer than 1364/);
  });

  it("refuses cyclic input without throwing a raw error", () => {
    const cyclic: Record<string, unknown> = { ...authentication };
    cyclic.self = cyclic;
    expect(refusal(() => parseResponse("authentication", cyclic)).message).toMatch(/not plain JSON/);
  });
});
