package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/state"
)

func init() {
	extraCommands = append(extraCommands, newTeamCmd, newTriggerCmd)
}

// newTeamCmd manages teams and their API tokens. It talks to Redis directly: creating the
// first admin token of a team cannot go through an API that needs one.
func newTeamCmd(g *globals) *cobra.Command {
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	cmd := &cobra.Command{
		Use:   "team",
		Short: "Create teams and manage their API tokens (talks to Redis directly)",
	}
	cmd.PersistentFlags().StringVar(&redisURL, "redis", redisURL, "Redis URL (env REDIS_URL)")
	open := func(cmd *cobra.Command) (*state.Store, error) {
		return state.Open(cmd.Context(), redisURL, nil)
	}
	create := &cobra.Command{
		Use:   "create TEAM",
		Short: "Create a team and print its first admin token (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			created, err := st.CreateTeam(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !created {
				return &exitError{code: 1, err: fmt.Errorf("team %s exists; add tokens with `pipefn team token %s --role admin`", args[0], args[0])}
			}
			tok, rec, err := auth.Issue(cmd.Context(), st, args[0], auth.RoleAdmin, "created with the team")
			if err != nil {
				return err
			}
			return printToken(cmd.OutOrStdout(), g, tok, rec)
		},
	}
	var role, name string
	token := &cobra.Command{
		Use:   "token TEAM",
		Short: "Issue an API token for a team (shown once; only its hash is stored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return err
			}
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, rec, err := auth.Issue(cmd.Context(), st, args[0], r, name)
			if err != nil {
				return err
			}
			return printToken(cmd.OutOrStdout(), g, tok, rec)
		},
	}
	token.Flags().StringVar(&role, "role", "editor", "viewer, editor or admin")
	token.Flags().StringVar(&name, "name", "", "what the token is for")
	tokens := &cobra.Command{
		Use:   "tokens TEAM",
		Short: "List a team's tokens (hashes and roles; tokens themselves are not stored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := st.ListTokens(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), list)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tROLE\tNAME\tCREATED")
			for _, t := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Hash[:16], t.Role, t.Name, t.CreatedAt.Format("2006-01-02 15:04"))
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke TEAM ID",
		Short: "Revoke a token by its id (a prefix of its hash, as `team tokens` lists it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := st.ListTokens(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var match []state.Token
			for _, t := range list {
				if len(args[1]) >= 8 && strings.HasPrefix(t.Hash, args[1]) {
					match = append(match, t)
				}
			}
			if len(match) != 1 {
				return &exitError{code: 1, err: fmt.Errorf("token id %q matches %d tokens of team %s (give at least 8 characters)", args[1], len(match), args[0])}
			}
			if err := st.RevokeToken(cmd.Context(), args[0], match[0].Hash); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", match[0].Hash[:16])
			return nil
		},
	}
	cmd.AddCommand(create, token, tokens, revoke)
	return cmd
}

func printToken(w io.Writer, g *globals, tok string, rec state.Token) error {
	if g.json {
		return printJSON(w, map[string]string{"team": rec.Team, "role": rec.Role, "id": rec.Hash[:16], "token": tok})
	}
	fmt.Fprintf(w, "team %s, role %s, id %s\n%s\n", rec.Team, rec.Role, rec.Hash[:16], tok)
	return nil
}

// newTriggerCmd manages a team's triggers through the REST API (admin token).
func newTriggerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "trigger", Short: "Manage webhooks, chat-ops and CloudEvent bindings that start runs"}
	var t state.Trigger
	var params, events []string
	create := &cobra.Command{
		Use:   "create KIND",
		Short: "Create a trigger: github, webhook, slack or cloudevent (the secret is read from PIPEFN_TRIGGER_SECRET)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t.Kind = args[0]
			t.Secret = os.Getenv("PIPEFN_TRIGGER_SECRET")
			t.Events = events
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					return fmt.Errorf("--param %q: want NAME=PATH", p)
				}
				if t.Parameters == nil {
					t.Parameters = map[string]string{}
				}
				t.Parameters[k] = v
			}
			var out map[string]any
			if err := g.rest(cmd, http.MethodPost, "/triggers", t, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	create.Flags().StringVar(&t.PipelineID, "pipeline", "", "pipeline id")
	create.Flags().StringVar(&t.PipelineVersionID, "version", "", "pipeline version id (default: the latest)")
	create.Flags().StringVar(&t.DisplayName, "name", "", "display name")
	create.Flags().StringVar(&t.EventType, "event-type", "", "CloudEvent type (cloudevent)")
	create.Flags().StringVar(&t.EventSource, "event-source", "", "CloudEvent source, exact or ending in * (cloudevent)")
	create.Flags().StringArrayVar(&params, "param", nil, "run parameter from the payload: NAME=PATH (repeatable)")
	create.Flags().StringSliceVar(&events, "events", nil, "GitHub events: push, pull_request")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the team's triggers",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := g.rest(cmd, http.MethodGet, "/triggers", nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a trigger",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.rest(cmd, http.MethodDelete, "/triggers/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

// rest calls the v2beta1 API with the CLI's server and token.
func (g *globals) rest(cmd *cobra.Command, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(g.server, "/")+"/apis/v2beta1"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Message string }
		_ = json.Unmarshal(b, &e)
		return &exitError{code: 1, err: fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Message)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
