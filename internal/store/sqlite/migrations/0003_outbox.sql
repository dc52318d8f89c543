-- The transactional outbox and the clients each browser session has signed
-- in to, SQLite. The PostgreSQL file of the same name has the same tables and
-- columns. Conventions as in 0001.

-- +goose Up

-- A message (a mail, a back-channel logout notice) written in the same
-- transaction as the change that needs it and delivered afterwards by a
-- worker. While a worker holds a message, lease names the claim and
-- next_attempt_at is when the claim lapses; a finished message keeps its
-- outcome until the sweep removes it.
CREATE TABLE outbox (
    tenant_id       TEXT   NOT NULL REFERENCES tenants (id),
    id              TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    payload         BLOB  NOT NULL, -- JSON, shaped by kind
    status          TEXT   NOT NULL, -- pending, sent or dead
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease           TEXT   NOT NULL, -- '' when no worker holds it
    last_error      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    done_at         BIGINT,          -- NULL while pending
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- The workers look for due messages across tenants: this is the one index
-- that does not lead with tenant_id.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_tenant_done ON outbox (tenant_id, status, done_at);

-- Which clients were issued codes for a browser session, so that ending the
-- session can notify each one (OpenID Connect Back-Channel Logout).
CREATE TABLE session_clients (
    tenant_id  TEXT   NOT NULL,
    session_id TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, session_id, client_id),
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX session_clients_client ON session_clients (tenant_id, client_id);

-- +goose Down
DROP TABLE session_clients;
DROP TABLE outbox;
