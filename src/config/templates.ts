/** The commented starter files that `cosmosgate init` writes. */

export const STARTER_CONFIG = `# cosmosgate configuration. Every key has a default; delete what you do not change.
# Editors can validate this file with the JSON Schema printed by \`cosmosgate config schema\`.

# SQLite state and audit trail, the local development CA, signing keys.
stateDir: ./.cosmosgate

# Data plane: the Cosmos DB REST API your SDK talks to. Always HTTPS.
dataPlane:
  listen: 127.0.0.1:8081
  publicUrl: https://localhost:8081   # the endpoint clients use; account locations point here
  tls: auto                           # local CA + certificate in stateDir; or {cert: file, key: file}

# Control plane: health (and, later, sign-in and the console).
controlPlane:
  listen: 127.0.0.1:8080
  publicUrl: http://localhost:8080

# Where allowed requests go.
upstream:
  type: embedded                      # in-process Cosmos DB-compatible store, kept in stateDir/store.db
  # file: store.db                    # its SQLite file (relative to stateDir); data survives restarts
  # udfs: true                        # run query UDFs (JavaScript, not sandboxed: grant "manage" to trusted people only)
  # type: cosmos
  # endpoint: https://ACCOUNT.documents.azure.com:443/
  # auth: {type: managedIdentity}     # or {type: key, env: COSMOS_KEY} / {type: key, file: ./cosmos.key}
  timeouts: {connect: 5s, request: 30s}

identity:
  tokens: {ttl: 10m, clockSkew: 30s}
  # Identity providers whose tokens the data plane trusts (besides the gateway's own passkey
  # sign-in). Check a refused token with \`cosmosgate doctor token\`.
  issuers: []
  # - preset: entra                     # Entra ID v2.0 tokens of one tenant
  #   tenant: 00000000-0000-0000-0000-000000000000
  #   audience: YOUR-API-CLIENT-ID      # v2.0 tokens carry the API's client ID
  #   require: {acrs: {contains: c1}}   # Conditional Access context demanding a phishing-resistant key
  # - preset: okta                      # an Okta custom authorization server
  #   url: https://ORG.okta.com/oauth2/default
  #   audience: api://cosmosgate
  #   require: {acr: phr}
  # - preset: github-actions            # CI jobs with no stored secret
  #   audience: https://cosmos.example.com
  #   repository: ORG/REPO
  #   ref: refs/heads/main
  #   environment: production
  #   groups: [ci-deploy]               # policy.yaml: members: {writer: ["group:ci-deploy"]}
  # - issuer: https://idp.example.com   # any OpenID provider (keys by discovery)
  #   audience: api://cosmosgate
  #   groupsClaim: groups               # values become "group:VALUE" members in policy.yaml

policy: ./policy.yaml                 # reloaded when it changes; a broken file keeps the old policy

audit:
  durability: strict                  # a response leaves only after its audit record is on disk
                                      # (buffered: responses do not wait; on disk within bufferedDelay)
  onFailure: closed                   # audit cannot record? 503 before anything reaches Cosmos DB
  checkpoints: {every: 1000, interval: 60s}   # signed chain checkpoints, served at /audit/checkpoints
  retention: "0"                      # keep forever; e.g. 400d prunes older records from a checkpoint
`;

export const STARTER_POLICY = `# cosmosgate policy. Deny by default: a request is allowed only when a role the caller holds
# allows every action it needs on the resource. Check it with \`cosmosgate policy check\`.
#
# Actions: metadata, read, create, upsert, replace, patch, delete, query, changeFeed, execute,
# conflicts, manage (create/delete databases, containers, scripts), or "*" for all of them.
# Native data-action strings (Microsoft.DocumentDB/databaseAccounts/...) are accepted too.
#
# Scopes ("on"): "/" is the whole account, "/dbs/DB", "/dbs/DB/colls/CONTAINER"; "*" matches one
# path segment. A scope covers everything beneath it.
#
# Predefined roles: "Cosmos DB Built-in Data Reader" and "Cosmos DB Built-in Data Contributor".

roles:
  admin:
    - allow: ["*"]
      on: /
  # orders-reader:
  #   - allow: [metadata, read, query, changeFeed]
  #     on: /dbs/shop/colls/orders

members:
  # "group:VALUE" matches a value of the issuer's roles claim; "sub:VALUE" a token subject.
  admin: ["group:cosmos-admins"]
  Cosmos DB Built-in Data Reader: ["group:readers"]
  Cosmos DB Built-in Data Contributor: ["group:writers"]
`;
