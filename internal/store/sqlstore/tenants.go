package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

const tenantColumns = `id, slug, display_name, logo_url, primary_color, signup_open, listed, is_system,
	password_min_length, mfa_policy, require_verified_email, session_idle_ns, session_absolute_ns,
	email_verify_ttl_ns, password_reset_ttl_ns, login_link_ttl_ns, mail_settings,
	reauth_ttl_ns, passkey_settings, created_at, updated_at, version`

var (
	qTenantInsert = newQuery(`INSERT INTO tenants (` + tenantColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
	qTenantGet    = newQuery(`SELECT ` + tenantColumns + ` FROM tenants WHERE id = ?`)
	qTenantUpdate = newQuery(`UPDATE tenants SET slug = ?, display_name = ?, logo_url = ?,
		primary_color = ?, signup_open = ?, listed = ?, is_system = ?, password_min_length = ?,
		mfa_policy = ?, require_verified_email = ?, session_idle_ns = ?, session_absolute_ns = ?,
		email_verify_ttl_ns = ?, password_reset_ttl_ns = ?, login_link_ttl_ns = ?, mail_settings = ?,
		reauth_ttl_ns = ?, passkey_settings = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ?`)
	qTenantVersion = newQuery(`SELECT version FROM tenants WHERE id = ?`)
	qTenantBySlug  = newQuery(`SELECT ` + tenantColumns + ` FROM tenants WHERE slug = ?`)
	qTenantsAfter  = newQuery(`SELECT ` + tenantColumns + ` FROM tenants WHERE slug > ? ORDER BY slug LIMIT ?`)
	qTenantsListed = newQuery(`SELECT ` + tenantColumns + ` FROM tenants
		WHERE listed = ? AND is_system = ? ORDER BY slug LIMIT ?`)
)

// tenants is the transaction's own tenant row.
type tenants struct{ *tx }

func (r tenants) Create(ctx context.Context, tn *ciam.Tenant) error {
	if tn.ID != r.tenant {
		return r.wrongTenant("tenant", tn.ID)
	}
	tn.CreatedAt, tn.UpdatedAt = utc(tn.CreatedAt), utc(tn.UpdatedAt)
	tn.Version = 1
	mailSettings, err := encodeTenantMail(tn.Mail)
	if err != nil {
		return err
	}
	passkeySettings, err := encodeTenantPasskeys(tn.Passkeys)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, qTenantInsert,
		string(tn.ID), tn.Slug, tn.DisplayName, tn.LogoURL, tn.PrimaryColor, tn.SignupOpen, tn.Listed, tn.System,
		tn.PasswordMinLength, tn.MFAPolicy, tn.RequireVerifiedEmail, int64(tn.SessionIdle), int64(tn.SessionAbsolute),
		int64(tn.EmailVerifyTTL), int64(tn.PasswordResetTTL), int64(tn.LoginLinkTTL), mailSettings,
		int64(tn.ReauthTTL), passkeySettings, micros(tn.CreatedAt), micros(tn.UpdatedAt), tn.Version)
	if err != nil {
		return r.db.wrap(err, "create tenant %s", tn.ID)
	}
	n, err := r.rowsAffected(res, "create tenant %s", tn.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return conflictf("create tenant %s: id or slug taken", tn.ID)
	}
	return nil
}

func (r tenants) Get(ctx context.Context) (*ciam.Tenant, error) {
	tn, err := scanTenant(r.row(ctx, qTenantGet, string(r.tenant)))
	if err != nil {
		return nil, r.db.wrap(err, "tenant %s", r.tenant)
	}
	return tn, nil
}

func (r tenants) Update(ctx context.Context, tn *ciam.Tenant) error {
	if tn.ID != r.tenant {
		return notFoundf("update tenant %s", tn.ID)
	}
	updated := utc(tn.UpdatedAt)
	mailSettings, err := encodeTenantMail(tn.Mail)
	if err != nil {
		return err
	}
	passkeySettings, err := encodeTenantPasskeys(tn.Passkeys)
	if err != nil {
		return err
	}
	res, err := r.execUpdate(ctx, qTenantUpdate,
		tn.Slug, tn.DisplayName, tn.LogoURL, tn.PrimaryColor, tn.SignupOpen, tn.Listed, tn.System,
		tn.PasswordMinLength, tn.MFAPolicy, tn.RequireVerifiedEmail, int64(tn.SessionIdle), int64(tn.SessionAbsolute),
		int64(tn.EmailVerifyTTL), int64(tn.PasswordResetTTL), int64(tn.LoginLinkTTL), mailSettings,
		int64(tn.ReauthTTL), passkeySettings, micros(updated), string(tn.ID), tn.Version)
	if err != nil {
		return r.db.wrap(err, "update tenant %s", tn.ID)
	}
	n, err := r.rowsAffected(res, "update tenant %s", tn.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		var v int64
		if err := r.row(ctx, qTenantVersion, string(tn.ID)).Scan(&v); err != nil {
			return r.db.wrap(err, "update tenant %s", tn.ID)
		}
		return conflictf("update tenant %s: version %d is stale (stored %d)", tn.ID, tn.Version, v)
	}
	tn.UpdatedAt = updated
	tn.Version++
	return nil
}

func scanTenant(s scanner) (*ciam.Tenant, error) {
	var (
		tn                        ciam.Tenant
		idle, absolute            int64
		verifyTTL, resetTTL, link int64
		reauth                    int64
		mailSettings, passkeys    string
		created, updated          int64
	)
	err := s.Scan(&tn.ID, &tn.Slug, &tn.DisplayName, &tn.LogoURL, &tn.PrimaryColor, &tn.SignupOpen, &tn.Listed, &tn.System,
		&tn.PasswordMinLength, &tn.MFAPolicy, &tn.RequireVerifiedEmail, &idle, &absolute,
		&verifyTTL, &resetTTL, &link, &mailSettings,
		&reauth, &passkeys, &created, &updated, &tn.Version)
	if err != nil {
		return nil, err
	}
	tn.EmailVerifyTTL, tn.PasswordResetTTL, tn.LoginLinkTTL = time.Duration(verifyTTL), time.Duration(resetTTL), time.Duration(link)
	if mailSettings != "" {
		if err := json.Unmarshal([]byte(mailSettings), &tn.Mail); err != nil {
			return nil, fmt.Errorf("tenant %s: mail settings: %w", tn.ID, err)
		}
	}
	tn.ReauthTTL = time.Duration(reauth)
	if passkeys != "" {
		if err := json.Unmarshal([]byte(passkeys), &tn.Passkeys); err != nil {
			return nil, fmt.Errorf("tenant %s: passkey settings: %w", tn.ID, err)
		}
	}
	tn.SessionIdle, tn.SessionAbsolute = time.Duration(idle), time.Duration(absolute)
	tn.CreatedAt, tn.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &tn, nil
}

// tenantList scans rows of tenantColumns.
func tenantList(rows *sql.Rows) ([]*ciam.Tenant, error) {
	defer rows.Close()
	var out []*ciam.Tenant
	for rows.Next() {
		tn, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, tn)
	}
	return out, rows.Err()
}

var _ store.Tenants = tenants{}

// encodeTenantMail stores an empty override as ” and any other as JSON.
func encodeTenantMail(m ciam.TenantMail) (string, error) {
	if m.IsZero() {
		return "", nil
	}
	m.Host, m.TLS, m.Username, m.From = cleanText(m.Host), cleanText(m.TLS), cleanText(m.Username), cleanText(m.From)
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode tenant mail settings: %w", err)
	}
	return string(b), nil
}

// encodeTenantPasskeys stores the default settings as ” and any others as JSON.
func encodeTenantPasskeys(p ciam.TenantPasskeys) (string, error) {
	if p.IsZero() {
		return "", nil
	}
	p.RPID, p.UserVerification = cleanText(p.RPID), cleanText(p.UserVerification)
	p.Origins = append([]string(nil), p.Origins...) // the caller's slice stays as it is
	cleanStrings(p.Origins)
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode tenant passkey settings: %w", err)
	}
	return string(b), nil
}
