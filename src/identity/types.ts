/** The authenticated caller of a data-plane request. */
export interface Principal {
  sub: string;
  kind: "user" | "agent" | "service";
  /** Values of the issuer's roles claim; feed `group:` members in policy. */
  groups: string[];
  /** Issuer URL the principal comes from (for an exchanged token: the federated issuer). */
  issuer: string;
  /**
   * Set only when the token itself was issued by someone else than `issuer`: the gateway, for a
   * token made by token exchange (RFC 8693) from a federated token.
   */
  tokenIssuer?: string;
  /** Display name when the token carries one (name, preferred_username). */
  name?: string;
  /** Credential (WebAuthn key) ID when the token names one (`cred`). */
  credential?: string;
  session?: string;
  amr?: string[];
  authTime?: number;
  jti?: string;
  /** Expiry, seconds since epoch. */
  exp: number;
  actor?: { sub: string };
  /** The agent grant the token acts under (`grant` claim; the gateway's own tokens only). */
  grant?: string;
}
