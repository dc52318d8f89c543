-- Single-use email tokens (address verification, password reset, login
-- links and codes, email change) and the tenant settings they need, SQLite.
-- The PostgreSQL file of the same name has the same tables and columns.
-- Conventions as in 0001.

-- +goose Up

-- Lifetimes of the mail-driven links and codes (0: the built-in default)
-- and the tenant's override of the deployment's SMTP settings (JSON, its
-- password sealed under the key-encryption key; '' for none).
ALTER TABLE tenants ADD COLUMN email_verify_ttl_ns   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN password_reset_ttl_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN login_link_ttl_ns     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN mail_settings         TEXT   NOT NULL DEFAULT '';

-- A link secret and, for some purposes, a six-digit code sent by mail. Only
-- hashes are kept: SHA-256 of the link secret, HMAC-SHA256 of the code
-- under a key derived from the key-encryption key, SHA-256 of the cookie
-- that binds a login to the browser that started it. used_at is set when
-- the token is redeemed, superseded by a newer one of the same purpose, or
-- revoked; attempts counts codes tried against it.
CREATE TABLE email_tokens (
    tenant_id    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    purpose      TEXT    NOT NULL,
    email        TEXT    NOT NULL, -- the address the mail went to
    link_hash    BLOB   NOT NULL,
    code_hash    BLOB,            -- NULL: no code was sent
    browser_hash BLOB,            -- NULL: not bound to a browser
    data         TEXT    NOT NULL, -- purpose-specific (email change: the other address)
    attempts     INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    used_at      BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE UNIQUE INDEX email_tokens_link ON email_tokens (tenant_id, link_hash);
CREATE INDEX email_tokens_user ON email_tokens (tenant_id, user_id, purpose, created_at);

-- +goose Down
DROP TABLE email_tokens;
ALTER TABLE tenants DROP COLUMN mail_settings;
ALTER TABLE tenants DROP COLUMN login_link_ttl_ns;
ALTER TABLE tenants DROP COLUMN password_reset_ttl_ns;
ALTER TABLE tenants DROP COLUMN email_verify_ttl_ns;
