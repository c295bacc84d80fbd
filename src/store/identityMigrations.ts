import type { Migration } from "./migrate.js";

/**
 * Schema of the identity database (`state.db`, its own file: `PRAGMA user_version` counts these
 * steps only). Tables are STRICT, so a value of the wrong type is refused instead of stored.
 * Arrays and free-form objects are JSON text; booleans are 0/1; times are ms since the epoch.
 *
 * - `revocation_epoch` holds one row whose `epoch` grows in the same transaction as every change
 *   that can revoke access, so any connection can tell cheaply that something changed.
 * - `credential_tombstones` remembers removed credential ids: a token signed in with a removed key
 *   must stay refused, and the id may not be registered again.
 *
 * @example
 * ```ts
 * migrate(db, identityMigrations);
 * ```
 */
export const identityMigrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    sql: `
      CREATE TABLE users (
        id               TEXT    PRIMARY KEY,
        name             TEXT    NOT NULL UNIQUE,
        display_name     TEXT,
        groups           TEXT    NOT NULL,
        admin            INTEGER NOT NULL CHECK (admin IN (0, 1)),
        disabled         INTEGER NOT NULL CHECK (disabled IN (0, 1)),
        created_at       INTEGER NOT NULL,
        webauthn_user_id TEXT    NOT NULL UNIQUE
      ) STRICT;

      CREATE TABLE invites (
        secret_hash TEXT    PRIMARY KEY,
        user_name   TEXT    NOT NULL,
        groups      TEXT    NOT NULL,
        admin       INTEGER NOT NULL CHECK (admin IN (0, 1)),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER,
        created_by  TEXT
      ) STRICT;
      CREATE INDEX invites_expires_at ON invites (expires_at);

      CREATE TABLE credentials (
        id               TEXT    PRIMARY KEY,
        user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        public_key       BLOB    NOT NULL,
        counter          INTEGER NOT NULL,
        transports       TEXT    NOT NULL,
        aaguid           TEXT    NOT NULL,
        fmt              TEXT    NOT NULL,
        device_bound     INTEGER NOT NULL CHECK (device_bound IN (0, 1)),
        backed_up        INTEGER NOT NULL CHECK (backed_up IN (0, 1)),
        nickname         TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        last_used_at     INTEGER,
        use_count        INTEGER NOT NULL,
        suspended_at     INTEGER,
        suspended_reason TEXT
      ) STRICT;
      CREATE INDEX credentials_user_id ON credentials (user_id);
      CREATE INDEX credentials_suspended ON credentials (id) WHERE suspended_at IS NOT NULL;

      CREATE TABLE credential_tombstones (
        id         TEXT    PRIMARY KEY,
        user_id    TEXT    NOT NULL,
        removed_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE challenges (
        challenge  TEXT    PRIMARY KEY,
        purpose    TEXT    NOT NULL CHECK (purpose IN ('register', 'login', 'grant', 'approval')),
        user_id    TEXT,
        data       TEXT,
        expires_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX challenges_expires_at ON challenges (expires_at);

      CREATE TABLE sessions (
        id             TEXT    PRIMARY KEY,
        user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        credential_id  TEXT    NOT NULL,
        amr            TEXT    NOT NULL,
        auth_time      INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        revoked_at     INTEGER,
        revoked_reason TEXT
      ) STRICT;
      CREATE INDEX sessions_user_id ON sessions (user_id);
      CREATE INDEX sessions_credential_id ON sessions (credential_id);
      CREATE INDEX sessions_expires_at ON sessions (expires_at);
      CREATE INDEX sessions_revoked ON sessions (expires_at) WHERE revoked_at IS NOT NULL;

      CREATE TABLE refresh_tokens (
        hash       TEXT    PRIMARY KEY,
        session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
      ) STRICT;
      CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
      CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

      CREATE TABLE signing_keys (
        kid          TEXT    PRIMARY KEY,
        alg          TEXT    NOT NULL CHECK (alg = 'ES256'),
        public_jwk   TEXT    NOT NULL,
        private_key  TEXT    NOT NULL,
        encrypted    INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
        created_at   INTEGER NOT NULL,
        activates_at INTEGER NOT NULL,
        retires_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE revocation_epoch (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        epoch INTEGER NOT NULL
      ) STRICT;
      INSERT INTO revocation_epoch (id, epoch) VALUES (1, 0);
    `,
  },
]);
