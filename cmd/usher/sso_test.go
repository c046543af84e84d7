package main

import (
	"context"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

func TestSSOCommands(t *testing.T) {
	db := tempDB(t)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--db", db); code != 0 {
		t.Fatalf("account create: exit %d, %s", code, stderr)
	}
	stored := func() (sso.Settings, error) {
		d, err := store.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		return sso.New(d.SSO(), sso.Config{}).Settings(context.Background(), usher.System(1))
	}

	t.Run("show before set up says off", func(t *testing.T) {
		code, stdout, stderr := cli(t, "sso", "show", "--account", "1", "--base-url", "https://usher.acme.test", "--db", db)
		if code != 0 || !strings.Contains(stdout, ": off") || !strings.Contains(stdout, "https://usher.acme.test/signin/oidc/callback") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("set up reads the secret from standard input", func(t *testing.T) {
		withStdin(t, "cli-secret\n")
		code, stdout, stderr := cli(t, "sso", "set", "--account", "1", "--provider-name", "Okta", "--issuer", "https://acme.okta.com",
			"--client-id", "0oa1", "--client-secret-stdin", "--allowed-domains", "acme.test, acme.co.uk", "--require-sso=true", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if !strings.Contains(stdout, "has been set up") || !strings.Contains(stdout, "Client secret:    set") || strings.Contains(stdout, "cli-secret") {
			t.Errorf("stdout %q", stdout)
		}
		st, err := stored()
		if err != nil || st.ClientSecret != "cli-secret" || !st.RequireSSO || strings.Join(st.AllowedDomains, " ") != "acme.test acme.co.uk" {
			t.Errorf("stored %+v %v", st, err)
		}
	})
	t.Run("an edit changes only the flags given", func(t *testing.T) {
		code, stdout, stderr := cli(t, "sso", "set", "--account", "1", "--create-users=true", "--db", db)
		if code != 0 || !strings.Contains(stdout, "Your changes have been saved.") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		st, err := stored()
		if err != nil || !st.CreateUsers || !st.RequireSSO || st.ClientSecret != "cli-secret" || st.ProviderName != "Okta" {
			t.Errorf("stored %+v %v", st, err)
		}
	})
	t.Run("wrong input names the field", func(t *testing.T) {
		code, _, stderr := cli(t, "sso", "set", "--account", "1", "--issuer", "http://idp.example.com", "--db", db)
		if code != 1 || !strings.Contains(stderr, "issuer: must use https") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		code, _, stderr = cli(t, "sso", "show", "--db", db)
		if code != 2 || !strings.Contains(stderr, "--account is required") {
			t.Errorf("without --account: exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("off", func(t *testing.T) {
		code, stdout, stderr := cli(t, "sso", "off", "--account", "1", "--db", db)
		if code != 0 || !strings.Contains(stdout, "turned off") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if _, err := stored(); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Errorf("after off: %v, want not found", err)
		}
	})
}
