package browser

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/state"
)

// TestTeamsSeeOnlyTheirOwn runs pipefn up with API tokens: the UI asks for a token, and
// with a team's token it shows that team's pipelines and nothing of another team's.
func TestTeamsSeeOnlyTheirOwn(t *testing.T) {
	s := startServerWith(t, func(c *allinone.Config) { c.AuthTokens = true })
	bg := context.Background()
	tokens := map[string]string{}
	ids := map[string]string{}
	for _, team := range []string{"red", "blue"} {
		if _, err := s.srv.Store.CreateTeam(bg, team); err != nil {
			t.Fatal(err)
		}
		tok, hash := auth.NewToken()
		if _, err := s.srv.Store.AddToken(bg, state.Token{Hash: hash, Team: team, Role: "editor", Name: "ui test"}); err != nil {
			t.Fatal(err)
		}
		tokens[team] = tok
		p, err := client.New(s.url, tok).UploadPipeline(bg, team+"-pipeline", "", readFile(t, repoRoot(), "examples", "hello-artifacts.yaml"))
		if err != nil {
			t.Fatalf("upload as %s: %v", team, err)
		}
		ids[team] = p.PipelineID
	}
	ctx := newBrowser(t)

	run(t, ctx, "open pipelines without a token", chromedp.Navigate(s.url+"/pipelines"))
	waitJS(t, ctx, "the sign-in message", `document.querySelector('.error-box')?.textContent.includes('set your team')`)
	screenshot(t, ctx, "unauthenticated")

	setToken := func(tok string) {
		t.Helper()
		run(t, ctx, "set a token",
			chromedp.SetValue(chromedp.CSS(`#token-input`), tok),
			chromedp.Click(`//button[text()="Set token"]`))
		waitJS(t, ctx, "the token saved", `document.getElementById('banner').textContent.includes('Token saved')`)
	}
	listed := func() []string {
		t.Helper()
		waitJS(t, ctx, "a list", `document.querySelector('main tbody tr')`)
		var names []string
		eval(t, ctx, `[...document.querySelectorAll('main tbody tr td:first-child')].map(td => td.textContent)`, &names)
		return names
	}
	setToken(tokens["red"])
	if diff := cmp.Diff([]string{"red-pipeline"}, listed()); diff != "" {
		t.Errorf("red's pipelines (-want +got):\n%s", diff)
	}
	setToken(tokens["blue"])
	waitJS(t, ctx, "blue's list", `document.querySelector('main tbody td')?.textContent === 'blue-pipeline'`)
	if diff := cmp.Diff([]string{"blue-pipeline"}, listed()); diff != "" {
		t.Errorf("blue's pipelines (-want +got):\n%s", diff)
	}
	// Red's pipeline by its address, with blue's token: not there.
	run(t, ctx, "red's pipeline as blue", chromedp.Navigate(s.url+"/pipelines/"+ids["red"]))
	waitJS(t, ctx, "not found", `document.querySelector('.error-box')`)
	var shown string
	eval(t, ctx, `document.getElementById('main').innerText`, &shown)
	if containsAny(shown, "red-pipeline", "produce", "summarise") {
		t.Errorf("blue sees red's pipeline: %q", shown)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
