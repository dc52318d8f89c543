-- Second factors and passkeys, SQLite. The PostgreSQL file of the same name
-- has the same tables and columns. Conventions as in 0001.

-- +goose Up

-- How long a login counts as recent for sensitive changes (0: the built-in
-- ten minutes), and the tenant's passkey settings (JSON: relying-party id,
-- extra origins, user verification; '' for the defaults derived from the
-- public URL).
ALTER TABLE tenants ADD COLUMN reauth_ttl_ns    BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN passkey_settings TEXT   NOT NULL DEFAULT '';

-- A user's TOTP authenticator: the shared secret, sealed under the
-- key-encryption key, and the last time step accepted, so a code is never
-- accepted twice by any server process (one conditional UPDATE).
CREATE TABLE totp_secrets (
    tenant_id  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    secret     BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    last_step  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Recovery codes: HMAC-SHA256 of each code under a key derived from the
-- key-encryption key; used_at is set when one is spent.
CREATE TABLE recovery_codes (
    tenant_id  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    code_hash  BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- WebAuthn credentials (passkeys and security keys). A credential id is
-- registered to one user of a tenant at most.
CREATE TABLE passkeys (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    credential_id    BLOB    NOT NULL,
    public_key       BLOB    NOT NULL,
    attestation_type TEXT    NOT NULL,
    aaguid           BLOB    NOT NULL,
    sign_count       BIGINT  NOT NULL,
    transports       TEXT    NOT NULL, -- JSON array
    user_verified    BOOLEAN NOT NULL, -- at registration
    backup_eligible  BOOLEAN NOT NULL,
    backup_state     BOOLEAN NOT NULL,
    name             TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    last_used_at     BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE UNIQUE INDEX passkeys_credential ON passkeys (tenant_id, credential_id);
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);

-- Short-lived authentication flows bound to one browser: a login waiting
-- for its second factor, a WebAuthn ceremony's challenge. browser_hash is
-- SHA-256 of the secret in the browser's cookie; used_at is set once, by
-- one conditional UPDATE, when the flow completes; attempts counts codes
-- tried against it.
CREATE TABLE auth_flows (
    tenant_id    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    browser_hash BLOB    NOT NULL,
    user_id      TEXT    NOT NULL, -- '' until the flow knows its user
    session_id   TEXT    NOT NULL, -- '' unless the flow acts on a session
    data         TEXT    NOT NULL, -- JSON, kind-specific
    attempts     INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    used_at      BIGINT,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

CREATE INDEX auth_flows_expiry ON auth_flows (tenant_id, expires_at);

-- +goose Down
DROP TABLE auth_flows;
DROP TABLE passkeys;
DROP TABLE recovery_codes;
DROP TABLE totp_secrets;
ALTER TABLE tenants DROP COLUMN passkey_settings;
ALTER TABLE tenants DROP COLUMN reauth_ttl_ns;
