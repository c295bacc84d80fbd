import { describe, expect, it } from "vitest";
import { discoveryDocument } from "./discovery.js";

describe("discoveryDocument", () => {
  it("describes a public PKCE client flow with absolute endpoints under the control plane", () => {
    expect(
      discoveryDocument({ issuer: "https://gate.example.com", controlPlaneUrl: "https://gate.example.com/" }),
    ).toEqual({
      issuer: "https://gate.example.com",
      authorization_endpoint: "https://gate.example.com/oauth/authorize",
      token_endpoint: "https://gate.example.com/oauth/token",
      revocation_endpoint: "https://gate.example.com/oauth/revoke",
      jwks_uri: "https://gate.example.com/.well-known/jwks.json",
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_credentials",
      ],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["none", "private_key_jwt"],
      token_endpoint_auth_signing_alg_values_supported: ["ES256"],
      revocation_endpoint_auth_methods_supported: ["none"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["ES256"],
    });
  });

  it("keeps a path prefix and refuses a non-URL", () => {
    const doc = discoveryDocument({
      issuer: "http://localhost:8080",
      controlPlaneUrl: "http://localhost:8080/gate",
    });
    expect(doc.jwks_uri).toBe("http://localhost:8080/gate/.well-known/jwks.json");
    expect(doc.token_endpoint).toBe("http://localhost:8080/gate/oauth/token");
    expect(() => discoveryDocument({ issuer: "x", controlPlaneUrl: "not a url" })).toThrow(/not a URL/);
  });
});
