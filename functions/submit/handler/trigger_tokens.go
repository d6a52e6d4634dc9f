package handler

import (
	"context"
	"net/http"
	"strings"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// TokenStore is what managing a team's API tokens over REST needs of the store.
type TokenStore interface {
	AddToken(ctx context.Context, t state.Token) (state.Token, error)
	ListTokens(ctx context.Context, team string) ([]state.Token, error)
	RevokeToken(ctx context.Context, team, hash string) error
}

// tokenRoutes mounts the admin API for a team's own tokens (the first admin token comes
// from `pipefn team create`, which talks to Redis directly).
func (t *Triggers) tokenRoutes(mux *http.ServeMux, ts TokenStore) {
	const p = "/apis/v2beta1/tokens"
	mux.HandleFunc("POST "+p, t.team(func(w http.ResponseWriter, r *http.Request, team string) error {
		var in struct {
			Role string `json:"role"`
			Name string `json:"name,omitempty"`
		}
		if err := rest.DecodeJSON(w, r, 0, &in); err != nil {
			return err
		}
		role, err := auth.ParseRole(in.Role)
		if err != nil {
			return err
		}
		tok, rec, err := auth.Issue(r.Context(), ts, team, role, in.Name)
		if err != nil {
			return err
		}
		// The only time the token is shown.
		rest.WriteJSON(w, http.StatusOK, map[string]any{"token_id": rec.Hash[:16], "team": team, "role": rec.Role, "name": rec.Name, "token": tok})
		return nil
	}))
	mux.HandleFunc("GET "+p, t.team(func(w http.ResponseWriter, r *http.Request, team string) error {
		list, err := ts.ListTokens(r.Context(), team)
		if err != nil {
			return err
		}
		out := make([]map[string]any, 0, len(list))
		for _, k := range list {
			out = append(out, map[string]any{"token_id": k.Hash[:16], "role": k.Role, "name": k.Name, "created_at": k.CreatedAt})
		}
		rest.WriteJSON(w, http.StatusOK, rest.ListBody("tokens", out, len(out), ""))
		return nil
	}))
	mux.HandleFunc("DELETE "+p+"/{id}", t.team(func(w http.ResponseWriter, r *http.Request, team string) error {
		id := r.PathValue("id")
		list, err := ts.ListTokens(r.Context(), team)
		if err != nil {
			return err
		}
		for _, k := range list {
			if len(id) >= 16 && strings.HasPrefix(k.Hash, id) {
				if err := ts.RevokeToken(r.Context(), team, k.Hash); err != nil {
					return err
				}
				rest.WriteJSON(w, http.StatusOK, struct{}{})
				return nil
			}
		}
		return api.Errorf(api.KindNotFound, "token %q not found", id)
	}))
}
