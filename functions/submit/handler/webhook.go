package handler

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// Signature headers.
const (
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	// The generic webhook signs "<timestamp>.<body>" (Unix seconds) with HMAC-SHA256 and
	// sends "v1=<hex>".
	HeaderTimestamp = "X-Pipefn-Timestamp"
	HeaderSignature = "X-Pipefn-Signature"
)

// SignHMAC is hex HMAC-SHA256 of the parts joined as given.
func SignHMAC(secret string, parts ...[]byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// checkHexMAC compares a received "prefix<hex>" with the expected hex MAC in constant time.
func checkHexMAC(received, prefix, want string) bool {
	got, ok := strings.CutPrefix(received, prefix)
	if !ok {
		return false
	}
	g, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	w, _ := hex.DecodeString(want)
	return hmac.Equal(g, w)
}

// VerifyGitHub checks X-Hub-Signature-256 ("sha256=<hex HMAC of the body>").
func VerifyGitHub(secret string, header string, body []byte) bool {
	return checkHexMAC(header, "sha256=", SignHMAC(secret, body))
}

// checkTimestamp reads a Unix-seconds timestamp and checks it is within window of now.
func checkTimestamp(ts string, now time.Time, window time.Duration) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := now.Sub(time.Unix(n, 0))
	return d <= window && d >= -window
}

// VerifyGeneric checks the generic webhook's signature and timestamp window.
func VerifyGeneric(secret, ts, sig string, body []byte, now time.Time, window time.Duration) bool {
	if !checkTimestamp(ts, now, window) {
		return false
	}
	return checkHexMAC(sig, "v1=", SignHMAC(secret, []byte(ts), []byte("."), body))
}

// GitHubEvent is what pipefn takes from a GitHub push or pull_request delivery. As a
// trigger's document it offers event, action, repository, ref, branch, sha, sender,
// number, and the whole payload under "payload".
type GitHubEvent struct {
	Event      string
	Action     string
	Repository string
	Ref        string
	SHA        string
	Sender     string
	Number     int64
	Payload    map[string]any
	// Ignore, when set, says why the delivery starts nothing (a deleted branch, a pull
	// request being closed).
	Ignore string
}

// Doc is the event as a trigger document.
func (g GitHubEvent) Doc() map[string]any {
	d := map[string]any{
		"event": g.Event, "action": g.Action, "repository": g.Repository, "ref": g.Ref,
		"branch": strings.TrimPrefix(g.Ref, "refs/heads/"), "sha": g.SHA, "sender": g.Sender,
		"payload": g.Payload,
	}
	if g.Number != 0 {
		d["number"] = g.Number
	}
	return d
}

type ghPayload struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Action     string `json:"action"`
	Number     int64  `json:"number"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
	PullRequest *struct {
		Head struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
}

// ParseGitHub reads a push or pull_request delivery. Other events are refused; a
// delivery that should start nothing comes back with Ignore set.
func ParseGitHub(event string, body []byte) (GitHubEvent, error) {
	var p ghPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return GitHubEvent{}, api.Errorf(api.KindInvalid, "GitHub %s payload: %v", event, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return GitHubEvent{}, api.Errorf(api.KindInvalid, "GitHub %s payload: %v", event, err)
	}
	g := GitHubEvent{Event: event, Action: p.Action, Repository: p.Repository.FullName, Sender: p.Sender.Login, Payload: raw}
	if g.Repository == "" {
		return GitHubEvent{}, api.Errorf(api.KindInvalid, "GitHub %s payload: repository.full_name is missing", event)
	}
	switch event {
	case "push":
		g.Ref, g.SHA = p.Ref, p.After
		if p.Deleted || strings.Trim(p.After, "0") == "" {
			g.Ignore = "push deletes " + p.Ref
		}
	case "pull_request":
		if p.PullRequest == nil {
			return GitHubEvent{}, api.Errorf(api.KindInvalid, "GitHub pull_request payload: pull_request is missing")
		}
		g.Ref, g.SHA, g.Number = p.PullRequest.Head.Ref, p.PullRequest.Head.SHA, p.Number
		if !slices.Contains([]string{"opened", "synchronize", "reopened"}, p.Action) {
			g.Ignore = "pull request " + p.Action
		}
	default:
		return GitHubEvent{}, api.Errorf(api.KindInvalid, "GitHub event %q: only push and pull_request start runs", event)
	}
	if g.Ignore == "" && (g.Ref == "" || g.SHA == "") {
		return GitHubEvent{}, api.Errorf(api.KindInvalid, "GitHub %s payload: ref or sha is missing", event)
	}
	return g, nil
}

// hookAnswer is what a webhook gets back.
type hookAnswer struct {
	Accepted       bool   `json:"accepted"`
	Ignored        string `json:"ignored,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// github handles a GitHub delivery: signature first, then the event filter, then an
// asynchronous submission keyed by the delivery id (GitHub's redeliveries reuse it).
func (t *Triggers) github(w http.ResponseWriter, r *http.Request, team string, tr state.Trigger, body []byte) error {
	if !VerifyGitHub(tr.Secret, r.Header.Get(HeaderGitHubSignature), body) {
		return errBadSignature
	}
	event := r.Header.Get(HeaderGitHubEvent)
	delivery := r.Header.Get(HeaderGitHubDelivery)
	if event == "ping" {
		rest.WriteJSON(w, http.StatusOK, hookAnswer{Accepted: true, Ignored: "ping"})
		return nil
	}
	if delivery == "" || len(delivery) > 100 {
		return api.Errorf(api.KindInvalid, "%s is missing or longer than 100 bytes", HeaderGitHubDelivery)
	}
	wanted := tr.Events
	if len(wanted) == 0 {
		wanted = []string{"push", "pull_request"}
	}
	if !slices.Contains(wanted, event) {
		rest.WriteJSON(w, http.StatusOK, hookAnswer{Ignored: fmt.Sprintf("event %q is not one this trigger starts runs for", event)})
		return nil
	}
	g, err := ParseGitHub(event, body)
	if err != nil {
		return err
	}
	if g.Ignore != "" {
		rest.WriteJSON(w, http.StatusOK, hookAnswer{Ignored: g.Ignore})
		return nil
	}
	run, missing := runFor(tr, fmt.Sprintf("%s %s@%.7s", g.Repository, strings.TrimPrefix(g.Ref, "refs/heads/"), g.SHA), g.Doc())
	if len(missing) > 0 {
		t.log().Info("trigger parameters missing from the delivery", "trigger", tr.TriggerID, "missing", missing)
	}
	key := idemKey("github", tr.TriggerID, delivery)
	t.submitLater(team, run, key, nil)
	rest.WriteJSON(w, http.StatusAccepted, hookAnswer{Accepted: true, IdempotencyKey: key})
	return nil
}

// ParseGeneric reads a generic webhook body: one JSON object.
func ParseGeneric(body []byte) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, api.Errorf(api.KindInvalid, "webhook body: want a JSON object: %v", err)
	}
	if doc == nil {
		return nil, api.Errorf(api.KindInvalid, "webhook body: want a JSON object, got null")
	}
	return doc, nil
}

// generic handles the generic signed webhook. The idempotency key is the signature: a
// replay inside the window carries the same one and creates nothing; outside the window
// the timestamp check refuses it.
func (t *Triggers) generic(w http.ResponseWriter, r *http.Request, team string, tr state.Trigger, body []byte) error {
	ts, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	if !VerifyGeneric(tr.Secret, ts, sig, body, t.now(), t.window()) {
		return errBadSignature
	}
	doc, err := ParseGeneric(body)
	if err != nil {
		return err
	}
	run, missing := runFor(tr, firstNonEmpty(tr.DisplayName, "webhook")+" "+ts, doc)
	if len(missing) > 0 {
		t.log().Info("trigger parameters missing from the webhook body", "trigger", tr.TriggerID, "missing", missing)
	}
	key := idemKey("webhook", tr.TriggerID, sig)
	t.submitLater(team, run, key, nil)
	rest.WriteJSON(w, http.StatusAccepted, hookAnswer{Accepted: true, IdempotencyKey: key})
	return nil
}
