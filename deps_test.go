package gatehouse_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/gatehouse-id/gatehouse/"

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(path, mod) }

func under(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// TestImportRules checks the one-way import graph of DESIGN.md section 4.
func TestImportRules(t *testing.T) {
	services := []string{"internal/audit", "internal/notify", "internal/tenant", "internal/user", "internal/session", "internal/authn", "internal/throttle", "internal/keys", "internal/consent", "internal/client", "internal/token", "internal/outbox", "internal/federation"}
	transports := []string{"internal/oidc", "internal/ui", "internal/admin", "internal/scim", "internal/console"}
	helpers := []string{"internal/web", "internal/oauth", "internal/mail"}
	storeImpls := []string{"internal/store/sqlite", "internal/store/postgres", "internal/store/sqlstore"}
	for _, p := range listPackages(t) {
		me := rel(p.ImportPath)
		for _, imp := range p.Imports {
			dep := rel(imp)
			own := strings.HasPrefix(imp, mod)
			switch {
			case me == "internal/ciam" && strings.Contains(strings.Split(imp, "/")[0], "."):
				t.Errorf("%s imports %s: the vocabulary package may import only the standard library", me, imp)
			case own && under(dep, storeImpls...) && !under(me, "cmd", "internal/testenv", "bench", "internal/store"):
				t.Errorf("%s imports %s: only cmd, testenv and bench open a store implementation; others receive a store.Store", me, dep)
			case under(me, services...) && (imp == "net/http" || dep == "internal/web"):
				if !(under(me, "internal/federation") && imp == "net/http") {
					t.Errorf("%s imports %s: services do not speak HTTP", me, imp)
				}
			case under(me, transports...) && own && under(dep, transports...) && !under(dep, me):
				t.Errorf("%s imports %s: transports never import each other", me, dep)
			case under(me, helpers...) && own && !under(dep, "internal/ciam") && !under(dep, me):
				t.Errorf("%s imports %s: helpers import only ciam", me, dep)
			case own && under(dep, "internal/server", "cmd") && !under(me, "cmd", "internal/testenv", "bench"):
				t.Errorf("%s imports %s: only cmd, testenv and bench use the wiring", me, dep)
			case own && under(dep, "internal/testenv") && !strings.HasSuffix(me, "_test"):
				t.Errorf("%s imports %s: testenv is for tests", me, dep)
			case own && under(me, "internal/store") && !under(dep, "internal/store", "internal/ciam"):
				t.Errorf("%s imports %s: the store depends only on ciam", me, dep)
			}
		}
	}
}

// TestPackageDocs checks that every package says what it owns.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}
