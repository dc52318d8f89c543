-- Refresh tokens rotate in place, SQLite. The PostgreSQL file of the same name has
-- the same tables and columns. Conventions as in 0001.
--
-- A family's current token is one row of refresh_tokens whose hash changes
-- at each rotation, so a rotation rewrites that row and its hash index
-- entry and no other index; before, every rotation inserted a new row
-- under six indexes. The spent hashes are kept in refresh_spent until the
-- family's absolute expiry, so presenting one again is still recognised as
-- reuse and revokes the family. refresh_tokens.rotated_at is no longer
-- written.

-- +goose Up
CREATE TABLE refresh_spent (
    tenant_id  TEXT   NOT NULL,
    hash       BLOB  NOT NULL,
    family_id  TEXT   NOT NULL,
    client_id  TEXT   NOT NULL, -- the family's client: only it may revoke by this hash
    spent_at   BIGINT NOT NULL,
    expires_at BIGINT NOT NULL, -- the family's absolute end: forgotten after
    PRIMARY KEY (tenant_id, hash)
) WITHOUT ROWID;

INSERT INTO refresh_spent (tenant_id, hash, family_id, client_id, spent_at, expires_at)
    SELECT tenant_id, hash, family_id, client_id, rotated_at, expires_at FROM refresh_tokens WHERE rotated_at IS NOT NULL;
DELETE FROM refresh_tokens WHERE rotated_at IS NOT NULL;

-- +goose Down
-- Spent hashes are dropped: a replayed old token is then refused as
-- unknown rather than recognised as reuse.
DROP TABLE refresh_spent;
