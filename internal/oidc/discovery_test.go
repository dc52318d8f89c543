package oidc_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

var update = flag.Bool("update", false, "rewrite the golden metadata documents in testdata/")

// TestDiscovery fetches both metadata documents, compares them with the
// golden files (the test server's URL replaced by {public_url}), checks the
// fields clients rely on, that every endpoint listed answers, and that the
// JWKS parses.
func TestDiscovery(t *testing.T) {
	f := newFixture(t)

	// go-oidc accepted the document (issuer equality is its first check).
	var pc struct {
		Issuer      string   `json:"issuer"`
		EndSession  string   `json:"end_session_endpoint"`
		Algs        []string `json:"id_token_signing_alg_values_supported"`
		UserinfoURL string   `json:"userinfo_endpoint"`
	}
	if err := f.provider.Claims(&pc); err != nil {
		t.Fatal(err)
	}
	if pc.Issuer != f.issuer || f.provider.Endpoint().AuthURL != f.issuer+"/authorize" || f.provider.Endpoint().TokenURL != f.issuer+"/token" || f.provider.UserInfoEndpoint() != f.issuer+"/userinfo" {
		t.Fatalf("provider endpoints: %+v %+v", pc, f.provider.Endpoint())
	}

	docs := map[string]string{
		"openid-configuration":       "/t/default/.well-known/openid-configuration",
		"oauth-authorization-server": "/t/default/.well-known/oauth-authorization-server",
	}
	for name, path := range docs {
		t.Run(name, func(t *testing.T) {
			res, err := http.Get(f.env.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var raw bytes.Buffer
			raw.ReadFrom(res.Body)
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
			}
			var doc map[string]any
			if err := json.Unmarshal(raw.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", name+".golden.json"), doc, f.env.URL)

			if doc["issuer"] != f.issuer {
				t.Errorf("issuer %v, want %s", doc["issuer"], f.issuer)
			}
			strs := func(k string) []string {
				var out []string
				for _, v := range doc[k].([]any) {
					out = append(out, v.(string))
				}
				return out
			}
			if got := strs("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
				t.Errorf("code_challenge_methods_supported %v: only S256", got)
			}
			if got := strs("response_types_supported"); !slices.Equal(got, []string{"code"}) {
				t.Errorf("response_types_supported %v: only code", got)
			}
			for _, g := range strs("grant_types_supported") {
				if g == "implicit" || g == "password" {
					t.Errorf("grant type %s advertised", g)
				}
			}
			if doc["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("authorization_response_iss_parameter_supported not true (RFC 9207)")
			}
			if !slices.Contains(strs("token_endpoint_auth_methods_supported"), "private_key_jwt") {
				t.Errorf("private_key_jwt not advertised")
			}
			if name == "openid-configuration" {
				if !slices.Contains(strs("id_token_signing_alg_values_supported"), "RS256") {
					t.Errorf("RS256 must be supported for ID tokens (OpenID Connect Discovery 3)")
				}
				for _, k := range []string{"userinfo_endpoint", "end_session_endpoint", "subject_types_supported", "scopes_supported", "claims_supported"} {
					if doc[k] == nil {
						t.Errorf("%s missing", k)
					}
				}
			}
			// Every endpoint listed is served under the issuer and answers
			// (with an error for an empty request, but not a 404 or a 5xx).
			for k, v := range doc {
				if !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
					continue
				}
				u := v.(string)
				if !strings.HasPrefix(u, f.issuer+"/") {
					t.Errorf("%s = %s is not under the issuer", k, u)
					continue
				}
				for _, method := range []string{"GET", "POST"} {
					req, _ := http.NewRequest(method, u, strings.NewReader(""))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
					if res.StatusCode == 404 || res.StatusCode >= 500 {
						t.Errorf("%s %s (%s): status %d", method, u, k, res.StatusCode)
					}
				}
			}
		})
	}

	// RFC 8414 section 3's path-insertion form is served too.
	res, err := http.Get(f.env.URL + "/.well-known/oauth-authorization-server/t/default")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("RFC 8414 well-known path: %d", res.StatusCode)
	}

	t.Run("jwks", func(t *testing.T) {
		res, err := http.Get(f.issuer + "/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
			t.Fatalf("JWKS does not parse: %v", err)
		}
		if res.StatusCode != 200 || len(set.Keys) == 0 {
			t.Fatalf("JWKS: %d with %d keys", res.StatusCode, len(set.Keys))
		}
		seen := map[string]bool{}
		for _, k := range set.Keys {
			if !k.Valid() || !k.IsPublic() || k.KeyID == "" || k.Algorithm == "" || k.Use != "sig" {
				t.Errorf("key %q: valid %v public %v alg %q use %q", k.KeyID, k.Valid(), k.IsPublic(), k.Algorithm, k.Use)
			}
			if seen[k.KeyID] {
				t.Errorf("kid %s appears twice", k.KeyID)
			}
			seen[k.KeyID] = true
		}
	})

	t.Run("unknown tenant", func(t *testing.T) {
		res, err := http.Get(f.env.URL + "/t/no-such-tenant/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Fatalf("status %d, want 404", res.StatusCode)
		}
	})
}

// golden compares doc, with base replaced by {public_url}, with the file at
// path (rewritten with -update).
func golden(t *testing.T, path string, doc map[string]any, base string) {
	t.Helper()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(b), base, "{public_url}") + "\n"
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestDiscovery -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the served document (run with -update after checking the change):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
