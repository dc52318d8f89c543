package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/server"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/user"
)

// withServer opens the configured database and wires the services, for the
// commands that work on the database directly.
func (a *app) withServer(ctx context.Context, fn func(*server.Server, store.Store) error) error {
	s, err := a.settings(nil)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	st, err := openStore(ctx, s.Database)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	kek, err := s.kek()
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{PublicURL: s.publicURL, Log: s.logger(a.stderr), Version: version(), KEK: kek, Mail: s.mail}, st)
	if err != nil {
		return err
	}
	return fn(srv, st)
}

func (a *app) addOutput(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&a.output, "output", "o", "text", "text or json")
}

func (a *app) emit(v any, text func(*tabwriter.Writer)) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		text(tw)
		return tw.Flush()
	}
	return fmt.Errorf("--output %q: want text or json", a.output)
}

var cliMeta = audit.Meta{RequestID: "cli"}

// tenantJSON is the CLI's view of a tenant.
type tenantJSON struct {
	ID                   string `json:"id"`
	Slug                 string `json:"slug"`
	DisplayName          string `json:"display_name"`
	LogoURL              string `json:"logo_url,omitempty"`
	PrimaryColor         string `json:"primary_color"`
	SignupOpen           bool   `json:"signup_open"`
	Listed               bool   `json:"listed"`
	System               bool   `json:"system,omitempty"`
	PasswordMinLength    int    `json:"password_min_length"`
	MFAPolicy            string `json:"mfa_policy"`
	RequireVerifiedEmail bool   `json:"require_verified_email"`
	SessionIdle          string `json:"session_idle"`
	SessionAbsolute      string `json:"session_absolute"`
	// The lifetimes of mailed links and codes in effect (defaults included).
	EmailVerifyTTL   string         `json:"email_verify_ttl"`
	PasswordResetTTL string         `json:"password_reset_ttl"`
	LoginLinkTTL     string         `json:"login_link_ttl"`
	Mail             tenantMailJSON `json:"mail"`
	// ReauthTTL is how long a login counts as recent, in effect.
	ReauthTTL string             `json:"reauth_ttl"`
	Passkeys  tenantPasskeysJSON `json:"passkeys"`
	CreatedAt string             `json:"created_at"`
	Warnings  []string           `json:"warnings,omitempty"`
}

// tenantPasskeysJSON is a tenant's WebAuthn settings: an empty RP ID is the
// public URL's host; origins are those besides the public URL's.
type tenantPasskeysJSON struct {
	RPID             string   `json:"rp_id,omitempty"`
	Origins          []string `json:"origins"`
	UserVerification string   `json:"user_verification"`
}

// tenantMailJSON is a tenant's SMTP override; the password is never shown,
// only whether one is set. Empty fields use the deployment's settings.
type tenantMailJSON struct {
	Host        string `json:"host,omitempty"`
	Port        int    `json:"port,omitempty"`
	TLS         string `json:"tls,omitempty"`
	Username    string `json:"username,omitempty"`
	PasswordSet bool   `json:"password_set"`
	From        string `json:"from,omitempty"`
}

func toTenantJSON(t *ciam.Tenant) tenantJSON {
	return tenantJSON{
		ID: string(t.ID), Slug: t.Slug, DisplayName: t.DisplayName, LogoURL: t.LogoURL, PrimaryColor: t.PrimaryColor,
		SignupOpen: t.SignupOpen, Listed: t.Listed, System: t.System, PasswordMinLength: t.EffectivePasswordMin(),
		MFAPolicy: t.MFAPolicy, RequireVerifiedEmail: t.RequireVerifiedEmail,
		SessionIdle: t.SessionIdle.String(), SessionAbsolute: t.SessionAbsolute.String(),
		EmailVerifyTTL: t.VerifyTTL().String(), PasswordResetTTL: t.ResetTTL().String(), LoginLinkTTL: t.LoginTTL().String(),
		Mail: tenantMailJSON{Host: t.Mail.Host, Port: t.Mail.Port, TLS: t.Mail.TLS, Username: t.Mail.Username,
			PasswordSet: len(t.Mail.SealedPassword) > 0, From: t.Mail.From},
		ReauthTTL: t.ReauthWindow().String(),
		Passkeys: tenantPasskeysJSON{RPID: t.Passkeys.RPID, Origins: append([]string{}, t.Passkeys.Origins...),
			UserVerification: ifEmpty(t.Passkeys.UserVerification, ciam.UVPreferred)},
		CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339), Warnings: tenant.Warnings(t),
	}
}

// tenantFlags binds every tenant setting to a flag; only flags that were set
// apply. The SMTP password is read from a file, never taken from a flag.
func tenantFlags(f *pflag.FlagSet) func() (tenant.Settings, error) {
	name := f.String("name", "", "display name")
	logo := f.String("logo-url", "", "https URL of the logo")
	color := f.String("primary-color", "", "brand colour, #rrggbb")
	signup := f.String("signup", "", "open or closed")
	listed := f.Bool("listed", false, "link the tenant from the public platform page")
	pwMin := f.Int("password-min-length", 0, "minimum password length (8-64; 0 for the NIST default)")
	mfa := f.String("mfa-policy", "", "off, optional or required")
	verified := f.Bool("require-verified-email", false, "users must verify their email before their first login")
	idle := f.Duration("session-idle", 0, "session idle lifetime, e.g. 24h")
	abs := f.Duration("session-absolute", 0, "absolute session lifetime, e.g. 720h")
	verifyTTL := f.Duration("email-verify-ttl", 0, "lifetime of email verification links and codes (1m-168h; 0 for the default 24h)")
	resetTTL := f.Duration("password-reset-ttl", 0, "lifetime of password reset links (5m-24h; 0 for the default 30m)")
	loginTTL := f.Duration("login-link-ttl", 0, "lifetime of login links and codes (1m-1h; 0 for the default 10m)")
	smtpHost := f.String("smtp-host", "", "the tenant's own SMTP server instead of the deployment's; with a password stored, changing it needs --smtp-password-file again (empty: not overridden)")
	smtpPort := f.Int("smtp-port", 0, "SMTP port (0: not overridden)")
	smtpTLS := f.String("smtp-tls", "", "none, starttls or tls (empty: not overridden)")
	smtpUser := f.String("smtp-username", "", "SMTP user name; goes with --smtp-password-file (empty: not overridden)")
	smtpPwFile := f.String("smtp-password-file", "", "file holding the SMTP password (a final line break is dropped); it is sealed before it is stored; an empty file clears it")
	smtpFrom := f.String("smtp-from", "", "sender address, e.g. \"Acme <no-reply@acme.example>\" (empty: not overridden)")
	reauthTTL := f.Duration("reauth-ttl", 0, "how long a login counts as recent for sensitive changes (1m-24h; 0 for the default 10m)")
	rpID := f.String("passkey-rp-id", "", "passkey relying-party id: the host of the public URL or of an origin, or a parent domain (empty: the public URL's host)")
	origins := f.StringArray("passkey-origin", nil, "extra origin that may use passkeys, e.g. https://login.acme.example (repeatable; replaces the list; \"\" clears it)")
	uv := f.String("passkey-user-verification", "", "preferred (default) or required: refuse passkeys that do not check a PIN or biometrics")
	return func() (tenant.Settings, error) {
		var s tenant.Settings
		if f.Changed("name") {
			s.DisplayName = name
		}
		if f.Changed("logo-url") {
			s.LogoURL = logo
		}
		if f.Changed("primary-color") {
			s.PrimaryColor = color
		}
		if f.Changed("signup") {
			open := *signup == "open" // the command checked it is open or closed
			s.SignupOpen = &open
		}
		if f.Changed("listed") {
			s.Listed = listed
		}
		if f.Changed("password-min-length") {
			s.PasswordMinLength = pwMin
		}
		if f.Changed("mfa-policy") {
			s.MFAPolicy = mfa
		}
		if f.Changed("require-verified-email") {
			s.RequireVerifiedEmail = verified
		}
		if f.Changed("session-idle") {
			s.SessionIdle = idle
		}
		if f.Changed("session-absolute") {
			s.SessionAbsolute = abs
		}
		if f.Changed("email-verify-ttl") {
			s.EmailVerifyTTL = verifyTTL
		}
		if f.Changed("password-reset-ttl") {
			s.PasswordResetTTL = resetTTL
		}
		if f.Changed("login-link-ttl") {
			s.LoginLinkTTL = loginTTL
		}
		if f.Changed("smtp-host") {
			s.MailHost = smtpHost
		}
		if f.Changed("smtp-port") {
			s.MailPort = smtpPort
		}
		if f.Changed("smtp-tls") {
			s.MailTLS = smtpTLS
		}
		if f.Changed("smtp-username") {
			s.MailUsername = smtpUser
		}
		if f.Changed("smtp-from") {
			s.MailFrom = smtpFrom
		}
		if f.Changed("reauth-ttl") {
			s.ReauthTTL = reauthTTL
		}
		if f.Changed("passkey-rp-id") {
			s.PasskeyRPID = rpID
		}
		if f.Changed("passkey-origin") {
			list := []string{}
			for _, o := range *origins {
				if strings.TrimSpace(o) != "" {
					list = append(list, o)
				}
			}
			s.PasskeyOrigins = &list
		}
		if f.Changed("passkey-user-verification") {
			s.PasskeyUserVerification = uv
		}
		if f.Changed("smtp-password-file") {
			b, err := os.ReadFile(*smtpPwFile)
			if err != nil {
				return s, fmt.Errorf("--smtp-password-file: %w", err)
			}
			pw := strings.TrimRight(string(b), "\r\n") // the final line break of a text file
			s.MailPassword = &pw
		}
		return s, nil
	}
}

func (a *app) tenantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Create, list and update tenants"}

	// write builds tenant create and update, which share every setting flag.
	write := func(use, short, verb string, apply func(ctx context.Context, srv *server.Server, slug string, s tenant.Settings) (*ciam.Tenant, error)) *cobra.Command {
		c := &cobra.Command{Use: use + " SLUG", Short: short, Args: cobra.ExactArgs(1)}
		settings := tenantFlags(c.Flags())
		a.addOutput(c)
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if v, _ := cmd.Flags().GetString("signup"); cmd.Flags().Changed("signup") && v != "open" && v != "closed" {
				return fmt.Errorf("--signup %q: want open or closed", v)
			}
			s, err := settings()
			if err != nil {
				return err
			}
			return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
				t, err := apply(cmd.Context(), srv, args[0], s)
				if err != nil {
					return err
				}
				return a.emit(toTenantJSON(t), func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "%s tenant %s (%s)\n", verb, t.Slug, t.ID)
					for _, warn := range tenant.Warnings(t) {
						fmt.Fprintf(w, "warning: %s\n", warn)
					}
				})
			})
		}
		return c
	}
	create := write("create", "Create a tenant", "created", func(ctx context.Context, srv *server.Server, slug string, s tenant.Settings) (*ciam.Tenant, error) {
		return srv.Tenants.Create(ctx, slug, s, "cli", cliMeta)
	})
	update := write("update", "Change a tenant's settings", "updated", func(ctx context.Context, srv *server.Server, slug string, s tenant.Settings) (*ciam.Tenant, error) {
		return srv.Tenants.Update(ctx, slug, s, "cli", cliMeta)
	})

	list := &cobra.Command{Use: "list", Short: "List tenants", Args: cobra.NoArgs}
	a.addOutput(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			var all []tenantJSON
			after := ""
			for {
				ts, err := srv.Tenants.List(cmd.Context(), after, 500)
				if err != nil {
					return err
				}
				for _, t := range ts {
					all = append(all, toTenantJSON(t))
				}
				if len(ts) < 500 {
					break
				}
				after = ts[len(ts)-1].Slug
			}
			if all == nil {
				all = []tenantJSON{}
			}
			return a.emit(all, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SLUG\tNAME\tSIGNUP\tLISTED\tID")
				for _, t := range all {
					fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\n", t.Slug, t.DisplayName, openClosed(t.SignupOpen), t.Listed, t.ID)
				}
			})
		})
	}
	get := &cobra.Command{Use: "get SLUG", Short: "Show a tenant's settings", Args: cobra.ExactArgs(1)}
	a.addOutput(get)
	get.RunE = func(cmd *cobra.Command, args []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			j := toTenantJSON(t)
			return a.emit(j, func(w *tabwriter.Writer) {
				m, unset := j.Mail, "(not set)"
				for _, kv := range [][2]string{
					{"slug", j.Slug}, {"id", j.ID}, {"name", j.DisplayName}, {"signup", openClosed(j.SignupOpen)},
					{"listed", fmt.Sprint(j.Listed)}, {"password min length", fmt.Sprint(j.PasswordMinLength)},
					{"mfa policy", j.MFAPolicy}, {"require verified email", fmt.Sprint(j.RequireVerifiedEmail)},
					{"session idle", j.SessionIdle}, {"session absolute", j.SessionAbsolute},
					{"email verify ttl", j.EmailVerifyTTL}, {"password reset ttl", j.PasswordResetTTL}, {"login link ttl", j.LoginLinkTTL},
					{"smtp host", ifEmpty(m.Host, unset)}, {"smtp port", ifEmpty(portString(m.Port), unset)}, {"smtp tls", ifEmpty(m.TLS, unset)},
					{"smtp username", ifEmpty(m.Username, unset)}, {"smtp password set", fmt.Sprint(m.PasswordSet)}, {"smtp from", ifEmpty(m.From, unset)},
					{"reauth ttl", j.ReauthTTL}, {"passkey rp id", ifEmpty(j.Passkeys.RPID, "(public URL host)")},
					{"passkey origins", ifEmpty(strings.Join(j.Passkeys.Origins, " "), "(none)")}, {"passkey user verification", j.Passkeys.UserVerification},
				} {
					fmt.Fprintf(w, "%s\t%s\n", kv[0], kv[1])
				}
				for _, warn := range j.Warnings {
					fmt.Fprintf(w, "warning:\t%s\n", warn)
				}
			})
		})
	}
	cmd.AddCommand(create, update, list, get)
	return cmd
}

func ifEmpty(v, empty string) string {
	if v == "" {
		return empty
	}
	return v
}

func portString(p int) string {
	if p == 0 {
		return ""
	}
	return fmt.Sprint(p)
}

func openClosed(b bool) string {
	if b {
		return "open"
	}
	return "closed"
}

// userJSON is the CLI's view of a user.
type userJSON struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	Locale        string `json:"locale,omitempty"`
	Status        string `json:"status"`
	CreatedAt     string `json:"created_at"`
	LastLoginAt   string `json:"last_login_at,omitempty"`
}

func toUserJSON(u *ciam.User) userJSON {
	j := userJSON{ID: string(u.ID), Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Locale: u.Locale,
		Status: string(u.Status), CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339)}
	if !u.LastLoginAt.IsZero() {
		j.LastLoginAt = u.LastLoginAt.UTC().Format(time.RFC3339)
	}
	return j
}

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Create, list, disable and enable users of a tenant"}
	var tenantSlug string
	addTenant := func(c *cobra.Command) {
		c.Flags().StringVar(&tenantSlug, "tenant", "default", "tenant slug")
	}

	var email, name, locale string
	var pwStdin, verified bool
	create := &cobra.Command{Use: "create", Short: "Create a user", Args: cobra.NoArgs}
	addTenant(create)
	a.addOutput(create)
	create.Flags().StringVar(&email, "email", "", "email address (required)")
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&locale, "locale", "", "preferred language, e.g. en or de")
	create.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	create.Flags().BoolVar(&verified, "email-verified", false, "mark the email address as verified")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		if email == "" {
			return errors.New("--email is required")
		}
		var pw string
		if pwStdin {
			line, err := bufio.NewReader(a.stdin).ReadString('\n')
			if err != nil && line == "" {
				return errors.New("--password-stdin: no password on standard input")
			}
			pw = strings.TrimRight(line, "\r\n")
		}
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			u, err := srv.Users.Create(cmd.Context(), t, userInput(email, name, locale, pw, verified), "cli", cliMeta)
			if err != nil {
				return err
			}
			return a.emit(toUserJSON(u), func(w *tabwriter.Writer) { fmt.Fprintf(w, "created user %s (%s) in %s\n", u.Email, u.ID, t.Slug) })
		})
	}

	list := &cobra.Command{Use: "list", Short: "List users", Args: cobra.NoArgs}
	addTenant(list)
	a.addOutput(list)
	var limit int
	var after string
	list.Flags().IntVar(&limit, "limit", 100, "at most this many users (up to 1000)")
	list.Flags().StringVar(&after, "after", "", "cursor: list users after this user id")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			us, err := srv.Users.List(cmd.Context(), t, store.UserFilter{After: ciam.UserID(after), Limit: limit})
			if err != nil {
				return err
			}
			out := make([]userJSON, 0, len(us))
			for _, u := range us {
				out = append(out, toUserJSON(u))
			}
			return a.emit(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tEMAIL\tSTATUS\tVERIFIED\tCREATED")
				for _, u := range out {
					fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\n", u.ID, u.Email, u.Status, u.EmailVerified, u.CreatedAt)
				}
			})
		})
	}

	status := func(use string, st ciam.UserStatus) *cobra.Command {
		var who string
		c := &cobra.Command{Use: use + " EMAIL|ID", Short: strings.ToUpper(use[:1]) + use[1:] + " a user", Args: cobra.ExactArgs(1)}
		addTenant(c)
		a.addOutput(c)
		c.RunE = func(cmd *cobra.Command, args []string) error {
			who = args[0]
			return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
				t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
				if err != nil {
					return err
				}
				var u *ciam.User
				if strings.Contains(who, "@") {
					u, err = srv.Users.ByEmail(cmd.Context(), t, who)
				} else {
					u, err = srv.Users.Get(cmd.Context(), t, ciam.UserID(who))
				}
				if err != nil {
					return err
				}
				u, err = srv.Users.SetStatus(cmd.Context(), t, u.ID, st, "cli", cliMeta)
				if err != nil {
					return err
				}
				return a.emit(toUserJSON(u), func(w *tabwriter.Writer) { fmt.Fprintf(w, "user %s is %s\n", u.Email, u.Status) })
			})
		}
		return c
	}
	cmd.AddCommand(create, list, status("disable", ciam.UserDisabled), status("enable", ciam.UserActive))
	return cmd
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the audit trail"}
	var tenantSlug string
	verify := &cobra.Command{Use: "verify", Short: "Walk a tenant's hash chain and report the first broken or missing event", Args: cobra.NoArgs}
	verify.Flags().StringVar(&tenantSlug, "tenant", "default", "tenant slug")
	a.addOutput(verify)
	verify.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, st store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			brk, n, err := audit.Verify(cmd.Context(), st, t.ID)
			if err != nil {
				return err
			}
			res := map[string]any{"tenant": t.Slug, "verified_events": n, "ok": brk == nil}
			if brk != nil {
				res["broken_at"], res["reason"] = brk.Seq, brk.Reason
			}
			if err := a.emit(res, func(w *tabwriter.Writer) {
				if brk == nil {
					fmt.Fprintf(w, "audit chain of %s: %d events verified\n", t.Slug, n)
				} else {
					fmt.Fprintf(w, "audit chain of %s BROKEN at event %d: %s (%d events before it verified)\n", t.Slug, brk.Seq, brk.Reason, n)
				}
			}); err != nil {
				return err
			}
			if brk != nil {
				return fmt.Errorf("audit chain broken at event %d", brk.Seq)
			}
			return nil
		})
	}
	cmd.AddCommand(verify)
	return cmd
}

func userInput(email, name, locale, pw string, verified bool) user.Input {
	return user.Input{Email: email, Name: name, Locale: locale, Password: pw, EmailVerified: verified}
}
