package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

func TestTeamCommands(t *testing.T) {
	srv := redistest.StartServer(t)
	redisURL := "redis://" + srv.Addr()
	out, code := pipefn(t, "team", "create", "ml", "--redis", redisURL, "--json")
	if code != 0 {
		t.Fatalf("team create: exit %d: %s", code, out)
	}
	var admin map[string]string
	if err := json.Unmarshal([]byte(out), &admin); err != nil {
		t.Fatalf("team create output %q: %v", out, err)
	}
	if admin["role"] != "admin" || !strings.HasPrefix(admin["token"], auth.TokenPrefix) {
		t.Fatalf("team create: %v", admin)
	}
	if out, code := pipefn(t, "team", "create", "ml", "--redis", redisURL); code == 0 {
		t.Errorf("second team create succeeded: %s", out)
	}
	out, code = pipefn(t, "team", "token", "ml", "--role", "viewer", "--name", "dashboards", "--redis", redisURL, "--json")
	if code != 0 {
		t.Fatalf("team token: exit %d: %s", code, out)
	}
	var viewer map[string]string
	_ = json.Unmarshal([]byte(out), &viewer)
	if out, code := pipefn(t, "team", "token", "ml", "--role", "root", "--redis", redisURL); code == 0 {
		t.Errorf("token with role root: %s", out)
	}

	st := state.New(srv.Client(), nil)
	a := &auth.Authenticator{Tokens: auth.FromStore(st)}
	for tok, want := range map[string]auth.Role{admin["token"]: auth.RoleAdmin, viewer["token"]: auth.RoleViewer} {
		team, role, err := a.Tokens(context.Background(), auth.HashToken(tok))
		if err != nil || team != "ml" || role != want.String() {
			t.Errorf("token of role %s: %s %s %v", want, team, role, err)
		}
	}

	out, code = pipefn(t, "team", "tokens", "ml", "--redis", redisURL)
	if code != 0 || !strings.Contains(out, viewer["id"]) || !strings.Contains(out, "dashboards") || strings.Contains(out, viewer["token"]) {
		t.Errorf("team tokens: exit %d:\n%s", code, out)
	}
	if out, code := pipefn(t, "team", "revoke", "ml", viewer["id"], "--redis", redisURL); code != 0 {
		t.Fatalf("team revoke: exit %d: %s", code, out)
	}
	if _, _, err := a.Tokens(context.Background(), auth.HashToken(viewer["token"])); err == nil {
		t.Error("revoked token still resolves")
	}
}
