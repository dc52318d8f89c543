package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const clientColumns = `tenant_id, id, name, is_public, first_party, secret_hash, secret_rotated_at,
	token_auth_method, jwks, redirect_uris, post_logout_uris, grant_types, scopes, audiences,
	id_token_alg, access_token_ttl_ns, refresh_idle_ttl_ns, refresh_max_ttl_ns, refresh_with_session,
	backchannel_logout_uri, created_at, updated_at, version`

var (
	// The SELECT from tenants inserts nothing when the tenant does not exist.
	qClientInsert = newQuery(`INSERT INTO clients (` + clientColumns + `)
		SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM tenants WHERE id = ?
		ON CONFLICT DO NOTHING`)
	qClientGet  = newQuery(`SELECT ` + clientColumns + ` FROM clients WHERE tenant_id = ? AND id = ?`)
	qClientList = newQuery(`SELECT ` + clientColumns + ` FROM clients
		WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?`)
	qClientUpdate = newQuery(`UPDATE clients SET name = ?, is_public = ?, first_party = ?, secret_hash = ?,
		secret_rotated_at = ?, token_auth_method = ?, jwks = ?, redirect_uris = ?, post_logout_uris = ?,
		grant_types = ?, scopes = ?, audiences = ?, id_token_alg = ?, access_token_ttl_ns = ?,
		refresh_idle_ttl_ns = ?, refresh_max_ttl_ns = ?, refresh_with_session = ?, backchannel_logout_uri = ?,
		updated_at = ?, version = version + 1
		WHERE tenant_id = ? AND id = ? AND version = ?`)
	qClientVersion = newQuery(`SELECT version FROM clients WHERE tenant_id = ? AND id = ?`)
	// The codes, refresh tokens and grants of the client go with it (ON DELETE CASCADE).
	qClientDelete = newQuery(`DELETE FROM clients WHERE tenant_id = ? AND id = ?`)
	qClientExists = newQuery(`SELECT 1 FROM clients WHERE tenant_id = ? AND id = ?`)
)

// clients is the tenant's OAuth clients. Names and URIs may come from
// dynamic registration, so their text is cleaned like other untrusted text.
type clients struct{ *tx }

// clientLists is a client's string lists, encoded for their columns.
type clientLists struct{ redirect, postLogout, grantTypes, scopes, audiences string }

// normaliseClient cleans c's text and times in place, as they will read back,
// and encodes its lists.
func normaliseClient(c *ciam.Client) (clientLists, error) {
	c.Name, c.TokenAuthMethod, c.JWKS = cleanText(c.Name), cleanText(c.TokenAuthMethod), cleanText(c.JWKS)
	c.IDTokenAlg, c.BackchannelLogoutURI = cleanText(c.IDTokenAlg), cleanText(c.BackchannelLogoutURI)
	c.SecretHash = bytesOrNil(c.SecretHash)
	c.SecretRotatedAt, c.CreatedAt, c.UpdatedAt = utc(c.SecretRotatedAt), utc(c.CreatedAt), utc(c.UpdatedAt)
	var (
		l   clientLists
		err error
	)
	for _, f := range []struct {
		dst *string
		src []string
	}{
		{&l.redirect, c.RedirectURIs}, {&l.postLogout, c.PostLogoutURIs}, {&l.grantTypes, c.GrantTypes},
		{&l.scopes, c.Scopes}, {&l.audiences, c.Audiences},
	} {
		cleanStrings(f.src)
		if *f.dst, err = encodeStrings(f.src); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (r clients) Create(ctx context.Context, c *ciam.Client) error {
	if !r.checkTenant(c.TenantID) {
		return r.wrongTenant("client", c.TenantID)
	}
	c.TenantID = r.tenant
	l, err := normaliseClient(c)
	if err != nil {
		return err
	}
	c.Version = 1
	res, err := r.exec(ctx, qClientInsert,
		string(c.ID), c.Name, c.Public, c.FirstParty, nullBytes(c.SecretHash), nullMicros(c.SecretRotatedAt),
		c.TokenAuthMethod, c.JWKS, l.redirect, l.postLogout, l.grantTypes, l.scopes, l.audiences,
		c.IDTokenAlg, int64(c.AccessTokenTTL), int64(c.RefreshIdleTTL), int64(c.RefreshMaxTTL), c.RefreshWithSession,
		c.BackchannelLogoutURI, micros(c.CreatedAt), micros(c.UpdatedAt), c.Version,
		string(r.tenant))
	if err != nil {
		return r.db.wrap(err, "create client %s", c.ID)
	}
	n, err := r.rowsAffected(res, "create client %s", c.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var one int
		if err := r.row(ctx, qTenantExists, string(r.tenant)).Scan(&one); err != nil {
			return r.db.wrap(err, "create client %s: tenant %s", c.ID, r.tenant)
		}
		return conflictf("create client %s: id taken", c.ID)
	}
	return nil
}

func (r clients) Get(ctx context.Context, id ciam.ClientID) (*ciam.Client, error) {
	c, err := scanClient(r.row(ctx, qClientGet, string(r.tenant), string(id)))
	if err != nil {
		return nil, r.db.wrap(err, "client %s", id)
	}
	return c, nil
}

func (r clients) List(ctx context.Context, after ciam.ClientID, n int) ([]*ciam.Client, error) {
	rows, err := r.rows(ctx, qClientList, string(r.tenant), string(after), limit(n))
	if err != nil {
		return nil, r.db.wrap(err, "list clients")
	}
	defer rows.Close()
	var out []*ciam.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, r.db.wrap(err, "list clients")
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.wrap(err, "list clients")
	}
	return out, nil
}

func (r clients) Update(ctx context.Context, c *ciam.Client) error {
	if !r.checkTenant(c.TenantID) {
		return notFoundf("update client %s", c.ID)
	}
	// Normalise a copy: c changes only if the update succeeds.
	w := *c
	w.RedirectURIs, w.PostLogoutURIs = append([]string(nil), c.RedirectURIs...), append([]string(nil), c.PostLogoutURIs...)
	w.GrantTypes, w.Scopes = append([]string(nil), c.GrantTypes...), append([]string(nil), c.Scopes...)
	w.Audiences = append([]string(nil), c.Audiences...)
	l, err := normaliseClient(&w)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, qClientUpdate,
		w.Name, w.Public, w.FirstParty, nullBytes(w.SecretHash), nullMicros(w.SecretRotatedAt),
		w.TokenAuthMethod, w.JWKS, l.redirect, l.postLogout, l.grantTypes, l.scopes, l.audiences,
		w.IDTokenAlg, int64(w.AccessTokenTTL), int64(w.RefreshIdleTTL), int64(w.RefreshMaxTTL), w.RefreshWithSession,
		w.BackchannelLogoutURI, micros(w.UpdatedAt),
		string(r.tenant), string(c.ID), c.Version)
	if err != nil {
		return r.db.wrap(err, "update client %s", c.ID)
	}
	n, err := r.rowsAffected(res, "update client %s", c.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var v int64
		if err := r.row(ctx, qClientVersion, string(r.tenant), string(c.ID)).Scan(&v); err != nil {
			return r.db.wrap(err, "update client %s", c.ID)
		}
		return conflictf("update client %s: version %d is stale (stored %d)", c.ID, c.Version, v)
	}
	// The stored row keeps its CreatedAt; so does c.
	w.CreatedAt = c.CreatedAt
	w.TenantID = r.tenant
	w.Version++
	*c = w
	return nil
}

func (r clients) Delete(ctx context.Context, id ciam.ClientID) error {
	res, err := r.exec(ctx, qClientDelete, string(r.tenant), string(id))
	if err != nil {
		return r.db.wrap(err, "delete client %s", id)
	}
	n, err := r.rowsAffected(res, "delete client %s", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("delete client %s", id)
	}
	return nil
}

// insertMissed explains an INSERT ... SELECT that wrote nothing: ErrNotFound
// if the user or the client is not in the tenant, ErrConflict otherwise.
func (t *tx) insertMissed(ctx context.Context, what string, user ciam.UserID, client ciam.ClientID) error {
	var one int
	if err := t.row(ctx, qUserExists, string(t.tenant), string(user)).Scan(&one); err != nil {
		return t.db.wrap(err, "%s: user %s", what, user)
	}
	if err := t.row(ctx, qClientExists, string(t.tenant), string(client)).Scan(&one); err != nil {
		return t.db.wrap(err, "%s: client %s", what, client)
	}
	return conflictf("%s: taken", what)
}

func scanClient(s scanner) (*ciam.Client, error) {
	var (
		c                                         ciam.Client
		secretHash                                []byte
		rotated                                   sql.NullInt64
		redirect, postLogout, grants, scopes, aud string
		accessTTL, idleTTL, maxTTL                int64
		created, updated                          int64
	)
	err := s.Scan(&c.TenantID, &c.ID, &c.Name, &c.Public, &c.FirstParty, &secretHash, &rotated,
		&c.TokenAuthMethod, &c.JWKS, &redirect, &postLogout, &grants, &scopes, &aud,
		&c.IDTokenAlg, &accessTTL, &idleTTL, &maxTTL, &c.RefreshWithSession,
		&c.BackchannelLogoutURI, &created, &updated, &c.Version)
	if err != nil {
		return nil, err
	}
	c.SecretHash = bytesOrNil(secretHash)
	c.SecretRotatedAt = fromNullMicros(rotated)
	c.AccessTokenTTL, c.RefreshIdleTTL, c.RefreshMaxTTL = time.Duration(accessTTL), time.Duration(idleTTL), time.Duration(maxTTL)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	for _, f := range []struct {
		dst *[]string
		src string
	}{
		{&c.RedirectURIs, redirect}, {&c.PostLogoutURIs, postLogout}, {&c.GrantTypes, grants},
		{&c.Scopes, scopes}, {&c.Audiences, aud},
	} {
		if *f.dst, err = decodeStrings(f.src); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

var _ store.Clients = clients{}
