-- OAuth and OpenID Connect provider state, SQLite. The PostgreSQL file of the
-- same name has the same tables and columns. As in 0001: times are BIGINT
-- microseconds since the Unix epoch (UTC), NULL where optional; durations
-- BIGINT nanoseconds; string lists JSON arrays in TEXT; tenant_id leads
-- every key. Deleting a client or a user deletes the codes, refresh tokens
-- and grants issued to it.

-- +goose Up
CREATE TABLE clients (
    tenant_id              TEXT    NOT NULL REFERENCES tenants (id),
    id                     TEXT    NOT NULL,
    name                   TEXT    NOT NULL,
    is_public              BOOLEAN NOT NULL,
    first_party            BOOLEAN NOT NULL,
    secret_hash            BLOB,   -- SHA-256 of the secret; NULL for public clients
    secret_rotated_at      BIGINT,
    token_auth_method      TEXT    NOT NULL,
    jwks                   TEXT    NOT NULL, -- a JWK Set for private_key_jwt, or ''
    redirect_uris          TEXT    NOT NULL, -- JSON array
    post_logout_uris       TEXT    NOT NULL, -- JSON array
    grant_types            TEXT    NOT NULL, -- JSON array
    scopes                 TEXT    NOT NULL, -- JSON array
    audiences              TEXT    NOT NULL, -- JSON array
    id_token_alg           TEXT    NOT NULL,
    access_token_ttl_ns    BIGINT  NOT NULL,
    refresh_idle_ttl_ns    BIGINT  NOT NULL,
    refresh_max_ttl_ns     BIGINT  NOT NULL,
    refresh_with_session   BOOLEAN NOT NULL,
    backchannel_logout_uri TEXT    NOT NULL,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    version                BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

CREATE TABLE signing_keys (
    tenant_id      TEXT   NOT NULL REFERENCES tenants (id),
    id             TEXT   NOT NULL, -- the JWS kid
    alg            TEXT   NOT NULL,
    public_jwk     BLOB   NOT NULL,
    private_sealed BLOB   NOT NULL, -- encrypted with the deployment's key-encryption key
    created_at     BIGINT NOT NULL,
    active_at      BIGINT NOT NULL,
    retired_at     BIGINT,          -- NULL while it may sign
    expires_at     BIGINT,          -- NULL while published
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- Only the SHA-256 of a code is stored.
CREATE TABLE auth_codes (
    tenant_id      TEXT   NOT NULL,
    hash           BLOB   NOT NULL,
    client_id      TEXT   NOT NULL,
    user_id        TEXT   NOT NULL,
    session_id     TEXT,            -- NULL when not tied to a browser session
    redirect_uri   TEXT   NOT NULL,
    scopes         TEXT   NOT NULL, -- JSON array
    nonce          TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    auth_time      BIGINT NOT NULL,
    acr            TEXT   NOT NULL,
    amr            TEXT   NOT NULL, -- JSON array of RFC 8176 method names
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT,          -- NULL until redeemed
    PRIMARY KEY (tenant_id, hash),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX auth_codes_client ON auth_codes (tenant_id, client_id);
CREATE INDEX auth_codes_user ON auth_codes (tenant_id, user_id);
CREATE INDEX auth_codes_expires ON auth_codes (tenant_id, expires_at);

-- One row per generation of a rotating refresh token; only its SHA-256 is stored.
CREATE TABLE refresh_tokens (
    tenant_id       TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    hash            BLOB   NOT NULL,
    family_id       TEXT   NOT NULL,
    client_id       TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    session_id      TEXT,            -- NULL when not tied to a browser session
    scopes          TEXT   NOT NULL, -- JSON array
    auth_time       BIGINT NOT NULL,
    acr             TEXT   NOT NULL,
    amr             TEXT   NOT NULL, -- JSON array
    created_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL, -- the family's absolute end
    rotated_at      BIGINT,
    revoked_at      BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (tenant_id, hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
-- Also serves lookups by (tenant_id, user_id) as its leading columns.
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (tenant_id, user_id, client_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (tenant_id, client_id);
CREATE INDEX refresh_tokens_session ON refresh_tokens (tenant_id, session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (tenant_id, expires_at);

-- What a user consented to for a client.
CREATE TABLE grants (
    tenant_id  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    scopes     TEXT   NOT NULL, -- JSON array
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX grants_client ON grants (tenant_id, client_id);

-- Single-use values, kept until they expire.
CREATE TABLE nonces (
    tenant_id  TEXT   NOT NULL REFERENCES tenants (id),
    namespace  TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, namespace, value)
) WITHOUT ROWID;

CREATE INDEX nonces_expires ON nonces (tenant_id, expires_at);

-- +goose Down
DROP TABLE nonces;
DROP TABLE grants;
DROP TABLE refresh_tokens;
DROP TABLE auth_codes;
DROP TABLE signing_keys;
DROP TABLE clients;
