package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/server"
	"github.com/gatehouse-id/gatehouse/internal/store"
)

// clientJSON is the CLI's view of a client. Secret appears only when it was
// just generated.
type clientJSON struct {
	ID                     string   `json:"client_id"`
	Secret                 string   `json:"client_secret,omitempty"`
	Name                   string   `json:"name"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"first_party"`
	TokenAuthMethod        string   `json:"token_endpoint_auth_method"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Scopes                 []string `json:"scopes"`
	Audiences              []string `json:"audiences,omitempty"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg,omitempty"`
	AccessTokenTTL         string   `json:"access_token_ttl"`
	RefreshIdleTTL         string   `json:"refresh_token_idle_ttl"`
	RefreshMaxTTL          string   `json:"refresh_token_max_ttl"`
	RefreshWithSession     bool     `json:"refresh_token_ends_with_session"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	Issuer                 string   `json:"issuer"`
	CreatedAt              string   `json:"created_at"`
}

func toClientJSON(c *ciam.Client, secret, issuer string) clientJSON {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientJSON{
		ID: string(c.ID), Secret: secret, Name: c.Name, Public: c.Public, FirstParty: c.FirstParty,
		TokenAuthMethod: c.TokenAuthMethod, RedirectURIs: nz(c.RedirectURIs), PostLogoutRedirectURIs: nz(c.PostLogoutURIs),
		GrantTypes: nz(c.GrantTypes), Scopes: nz(c.Scopes), Audiences: c.Audiences, IDTokenAlg: c.IDTokenAlg,
		AccessTokenTTL: c.AccessTokenTTL.String(), RefreshIdleTTL: c.RefreshIdleTTL.String(), RefreshMaxTTL: c.RefreshMaxTTL.String(),
		RefreshWithSession: c.RefreshWithSession, BackchannelLogoutURI: c.BackchannelLogoutURI,
		Issuer: issuer, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339),
	}
}

func (a *app) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register and manage OAuth clients of a tenant"}
	var tenantSlug string
	addTenant := func(c *cobra.Command) { c.Flags().StringVar(&tenantSlug, "tenant", "default", "tenant slug") }

	var in client.Input
	var grants, scopes string
	create := &cobra.Command{Use: "create", Short: "Register a client; prints its id and, for a confidential client, its secret (shown once)", Args: cobra.NoArgs}
	addTenant(create)
	a.addOutput(create)
	f := create.Flags()
	f.StringVar(&in.Name, "name", "", "name shown on the consent page (required)")
	f.StringArrayVar(&in.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable)")
	f.StringArrayVar(&in.PostLogoutURIs, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeatable)")
	f.BoolVar(&in.Public, "public", false, "a public client (a browser or native app without a secret)")
	f.BoolVar(&in.FirstParty, "first-party", false, "the tenant's own application: no consent page")
	f.StringVar(&grants, "grant", "", "grant types, comma-separated: authorization_code,refresh_token,client_credentials")
	f.StringVar(&scopes, "scopes", "", "scopes the client may obtain, space- or comma-separated (default openid profile email offline_access)")
	f.StringArrayVar(&in.Audiences, "audience", nil, "audience of client_credentials tokens (repeatable)")
	f.StringVar(&in.TokenAuthMethod, "auth-method", "", "client_secret_basic (default), client_secret_post, private_key_jwt or none")
	f.StringVar(&in.JWKS, "jwks", "", "the client's public keys (JWK Set JSON) for private_key_jwt")
	f.StringVar(&in.IDTokenAlg, "id-token-alg", "", "ES256 (default), RS256 or EdDSA")
	f.DurationVar(&in.AccessTokenTTL, "access-token-ttl", 0, "access token lifetime (default 15m)")
	f.DurationVar(&in.RefreshIdleTTL, "refresh-idle-ttl", 0, "refresh token idle lifetime (default 336h)")
	f.DurationVar(&in.RefreshMaxTTL, "refresh-max-ttl", 0, "refresh token absolute lifetime (default 2160h)")
	f.BoolVar(&in.RefreshWithSession, "refresh-ends-with-session", false, "refresh tokens end when the browser session ends")
	f.StringVar(&in.BackchannelLogoutURI, "backchannel-logout-uri", "", "where a logout token is posted when a session the client was issued tokens for ends (OpenID Connect Back-Channel Logout)")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		if grants != "" {
			in.GrantTypes = splitList(grants)
		}
		if scopes != "" {
			in.Scopes = splitList(scopes)
		}
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			c, secret, err := srv.Clients.Create(cmd.Context(), t, in, "cli", cliMeta)
			if err != nil {
				return err
			}
			j := toClientJSON(c, secret, srv.Provider.Issuer(t))
			return a.emit(j, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "client_id:\t%s\n", c.ID)
				if secret != "" {
					fmt.Fprintf(w, "client_secret:\t%s\t(shown once; store it now)\n", secret)
				}
				fmt.Fprintf(w, "issuer:\t%s\n", j.Issuer)
			})
		})
	}

	list := &cobra.Command{Use: "list", Short: "List clients", Args: cobra.NoArgs}
	addTenant(list)
	a.addOutput(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			out := []clientJSON{}
			var after ciam.ClientID
			for {
				cs, err := srv.Clients.List(cmd.Context(), t.ID, after, 500)
				if err != nil {
					return err
				}
				for _, c := range cs {
					out = append(out, toClientJSON(c, "", srv.Provider.Issuer(t)))
				}
				if len(cs) < 500 {
					break
				}
				after = cs[len(cs)-1].ID
			}
			return a.emit(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "CLIENT_ID\tNAME\tPUBLIC\tGRANTS")
				for _, c := range out {
					fmt.Fprintf(w, "%s\t%s\t%t\t%s\n", c.ID, c.Name, c.Public, strings.Join(c.GrantTypes, ","))
				}
			})
		})
	}

	one := func(use, short string, run func(cmd *cobra.Command, srv *server.Server, t *ciam.Tenant, id ciam.ClientID) error) *cobra.Command {
		c := &cobra.Command{Use: use + " CLIENT_ID", Short: short, Args: cobra.ExactArgs(1)}
		addTenant(c)
		a.addOutput(c)
		c.RunE = func(cmd *cobra.Command, args []string) error {
			return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
				t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
				if err != nil {
					return err
				}
				return run(cmd, srv, t, ciam.ClientID(args[0]))
			})
		}
		return c
	}
	get := one("get", "Show a client", func(cmd *cobra.Command, srv *server.Server, t *ciam.Tenant, id ciam.ClientID) error {
		c, err := srv.Clients.Get(cmd.Context(), t.ID, id)
		if err != nil {
			return err
		}
		j := toClientJSON(c, "", srv.Provider.Issuer(t))
		return a.emit(j, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "client_id:\t%s\nname:\t%s\npublic:\t%t\nfirst_party:\t%t\nauth_method:\t%s\nredirect_uris:\t%s\ngrant_types:\t%s\nscopes:\t%s\n",
				j.ID, j.Name, j.Public, j.FirstParty, j.TokenAuthMethod, strings.Join(j.RedirectURIs, " "), strings.Join(j.GrantTypes, ","), strings.Join(j.Scopes, " "))
		})
	})
	del := one("delete", "Delete a client and everything issued to it", func(cmd *cobra.Command, srv *server.Server, t *ciam.Tenant, id ciam.ClientID) error {
		if err := srv.Clients.Delete(cmd.Context(), t.ID, id, "cli", cliMeta); err != nil {
			return err
		}
		return a.emit(map[string]any{"client_id": id, "deleted": true}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted client %s\n", id) })
	})
	rotate := one("rotate-secret", "Issue a new secret; the old one stops working at once", func(cmd *cobra.Command, srv *server.Server, t *ciam.Tenant, id ciam.ClientID) error {
		secret, err := srv.Clients.RotateSecret(cmd.Context(), t.ID, id, "cli", cliMeta)
		if err != nil {
			return err
		}
		return a.emit(map[string]any{"client_id": id, "client_secret": secret}, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "client_secret:\t%s\t(shown once; store it now)\n", secret)
		})
	})
	cmd.AddCommand(create, list, get, del, rotate)
	return cmd
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "List and rotate a tenant's token signing keys"}
	var tenantSlug, alg string
	rotate := &cobra.Command{Use: "rotate", Short: "Publish a new signing key; it signs after the publish-ahead time, and the old one stays published until its tokens expire", Args: cobra.NoArgs}
	rotate.Flags().StringVar(&tenantSlug, "tenant", "default", "tenant slug")
	rotate.Flags().StringVar(&alg, "alg", "", "ES256, RS256 or EdDSA (default: every algorithm in use)")
	a.addOutput(rotate)
	rotate.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			k, err := srv.Keys.Rotate(cmd.Context(), t.ID, alg)
			if err != nil {
				return err
			}
			res := map[string]any{"tenant": t.Slug}
			if k != nil {
				res["kid"], res["alg"], res["active_at"] = k.ID, k.Alg, k.ActiveAt.UTC().Format(time.RFC3339)
			}
			return a.emit(res, func(w *tabwriter.Writer) {
				if k != nil {
					fmt.Fprintf(w, "new %s key %s published; it signs from %s\n", k.Alg, k.ID, k.ActiveAt.UTC().Format(time.RFC3339))
				} else {
					fmt.Fprintln(w, "rotated")
				}
			})
		})
	}
	list := &cobra.Command{Use: "list", Short: "List published signing keys", Args: cobra.NoArgs}
	list.Flags().StringVar(&tenantSlug, "tenant", "default", "tenant slug")
	a.addOutput(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return a.withServer(cmd.Context(), func(srv *server.Server, _ store.Store) error {
			t, err := srv.Tenants.BySlug(cmd.Context(), tenantSlug)
			if err != nil {
				return err
			}
			ks, err := srv.Keys.Keys(cmd.Context(), t.ID)
			if err != nil {
				return err
			}
			type keyJSON struct {
				Kid       string `json:"kid"`
				Alg       string `json:"alg"`
				Created   string `json:"created_at"`
				ActiveAt  string `json:"active_at"`
				RetiredAt string `json:"retired_at,omitempty"`
				ExpiresAt string `json:"expires_at,omitempty"`
			}
			ts := func(t time.Time) string {
				if t.IsZero() {
					return ""
				}
				return t.UTC().Format(time.RFC3339)
			}
			out := []keyJSON{}
			for _, k := range ks {
				out = append(out, keyJSON{k.ID, k.Alg, ts(k.CreatedAt), ts(k.ActiveAt), ts(k.RetiredAt), ts(k.ExpiresAt)})
			}
			return a.emit(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "KID\tALG\tACTIVE_AT\tRETIRED_AT\tEXPIRES_AT")
				for _, k := range out {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Kid, k.Alg, k.ActiveAt, k.RetiredAt, k.ExpiresAt)
				}
			})
		})
	}
	cmd.AddCommand(rotate, list)
	return cmd
}
