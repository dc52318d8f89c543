package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigDefaultsValidate(t *testing.T) {
	c, err := load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "localhost:8080" || s.publicURL.String() != "http://localhost:8080" || s.Database != "sqlite:./gatehouse-data/gatehouse.db" {
		t.Fatalf("defaults: %+v", s.fileConfig)
	}
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.yaml")
	os.WriteFile(path, []byte("addr: ':9000'\npublic_url: https://id.example.com\nlog_format: json\n"), 0o600)
	c, err := load(path, []string{"GATEHOUSE_ADDR=127.0.0.1:9100", "PATH=/bin", "GATEHOUSE_TEST_POSTGRES=x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9100" || c.PublicURL != "https://id.example.com" || c.LogFormat != "json" {
		t.Fatalf("layers: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("addr: ':9000'\npublic_ulr: https://typo.example.com\n"), 0o600)
	if _, err := load(unknown, nil); err == nil || !strings.Contains(err.Error(), "public_ulr") {
		t.Fatalf("unknown key not reported: %v", err)
	}
	if _, err := load("", []string{"GATEHOUSE_ADRR=:1"}); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_ADRR") {
		t.Fatalf("unknown env not reported: %v", err)
	}
	c := defaults()
	c.Addr = "nohostport"
	c.PublicURL = "http://id.example.com"
	c.Database = "mysql://x"
	c.LogLevel = "loud"
	c.LogFormat = "xml"
	c.TrustedProxies = []string{"not-an-ip"}
	_, err := c.validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"addr", "plain http is only allowed for localhost", "database", "log_level", "log_format", "trusted_proxies"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problem %q not reported in:\n%v", want, err)
		}
	}
	c = defaults()
	c.PublicURL = "https://id.example.com/base?x=1"
	if _, err := c.validate(); err == nil {
		t.Error("public URL with path and query accepted")
	}
	for _, ops := range []string{"nohostport", defaults().Addr} {
		c = defaults()
		c.OpsAddr = ops
		if _, err := c.validate(); err == nil || !strings.Contains(err.Error(), "ops_addr") {
			t.Errorf("ops_addr %q: %v", ops, err)
		}
	}
	c = defaults()
	c.OpsAddr = "127.0.0.1:9090"
	if _, err := c.validate(); err != nil {
		t.Errorf("a valid ops_addr refused: %v", err)
	}
}
