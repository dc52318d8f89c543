-- Gatehouse schema, PostgreSQL. The SQLite file of the same name has the
-- same tables and columns. Times are BIGINT microseconds since the Unix
-- epoch (UTC), durations BIGINT nanoseconds. tenant_id leads every key of a
-- tenant-owned table.

-- +goose Up
CREATE TABLE tenants (
    id                     TEXT    NOT NULL PRIMARY KEY,
    slug                   TEXT    NOT NULL UNIQUE,
    display_name           TEXT    NOT NULL,
    logo_url               TEXT    NOT NULL,
    primary_color          TEXT    NOT NULL,
    signup_open            BOOLEAN NOT NULL,
    listed                 BOOLEAN NOT NULL,
    is_system              BOOLEAN NOT NULL,
    password_min_length    INTEGER NOT NULL,
    mfa_policy             TEXT    NOT NULL,
    require_verified_email BOOLEAN NOT NULL,
    session_idle_ns        BIGINT  NOT NULL,
    session_absolute_ns    BIGINT  NOT NULL,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    version                BIGINT  NOT NULL
);

CREATE TABLE users (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id),
    id             TEXT    NOT NULL,
    email          TEXT,   -- normalised; NULL when the user has none
    email_verified BOOLEAN NOT NULL,
    name           TEXT    NOT NULL,
    locale         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    last_login_at  BIGINT,
    version        BIGINT  NOT NULL,
    pii_key        BYTEA,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX users_email ON users (tenant_id, email);

CREATE TABLE passwords (
    tenant_id  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE sessions (
    tenant_id       TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    token_hash      BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    auth_time       BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    ip              TEXT   NOT NULL,
    user_agent      TEXT   NOT NULL,
    amr             TEXT   NOT NULL, -- JSON array of RFC 8176 method names
    acr             TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX sessions_token_hash ON sessions (tenant_id, token_hash);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id, created_at);
CREATE INDEX sessions_expires ON sessions (tenant_id, expires_at);

-- The head of each tenant's audit chain: the last sequence number and hash.
CREATE TABLE audit_heads (
    tenant_id TEXT   NOT NULL PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      BYTEA
);

CREATE TABLE audit_events (
    tenant_id   TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    event_type  TEXT   NOT NULL,
    actor_id    TEXT   NOT NULL,
    target_id   TEXT   NOT NULL,
    outcome     TEXT   NOT NULL,
    request_id  TEXT   NOT NULL,
    ip          TEXT   NOT NULL,
    data        TEXT   NOT NULL, -- JSON object of strings
    pii         BYTEA,           -- encrypted with the subject user's PII key
    prev_hash   BYTEA,
    hash        BYTEA  NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE INDEX audit_events_type ON audit_events (tenant_id, event_type, seq);

-- Deployment-wide values outside any tenant.
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value BYTEA
);

-- +goose Down
DROP TABLE settings;
DROP TABLE audit_events;
DROP TABLE audit_heads;
DROP TABLE sessions;
DROP TABLE passwords;
DROP TABLE users;
DROP TABLE tenants;
