package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// Slack's signing headers (signing secret v0).
const (
	HeaderSlackTimestamp = "X-Slack-Request-Timestamp"
	HeaderSlackSignature = "X-Slack-Signature"
)

// VerifySlack checks a Slack request: "v0=" + hex HMAC-SHA256 of "v0:<ts>:<body>", with
// the timestamp within window of now.
func VerifySlack(secret, ts, sig string, body []byte, now time.Time, window time.Duration) bool {
	if !checkTimestamp(ts, now, window) {
		return false
	}
	return checkHexMAC(sig, "v0=", SignHMAC(secret, []byte("v0:"+ts+":"), body))
}

// ChatCommand is a parsed slash command.
type ChatCommand struct {
	Verb   string // run, status, list, cancel, schedules, help
	Target string // the pipeline (run) or run id (status, cancel)
	Params map[string]string
	// ResponseURL is where a delayed answer goes.
	ResponseURL string
	User        string
}

// chatUsage is the help text.
const chatUsage = "usage: run PIPELINE [k=v ...] | status RUN | list | cancel RUN | schedules"

// ParseChatCommand reads a slash command's form body (command, text, response_url,
// user_name). Errors are for the user, in the chat.
func ParseChatCommand(body []byte) (ChatCommand, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ChatCommand{}, api.Errorf(api.KindInvalid, "slash command body: %v", err)
	}
	c := ChatCommand{ResponseURL: form.Get("response_url"), User: form.Get("user_name")}
	fields := strings.Fields(form.Get("text"))
	if len(fields) == 0 {
		c.Verb = "help"
		return c, nil
	}
	c.Verb = strings.ToLower(fields[0])
	args := fields[1:]
	switch c.Verb {
	case "run":
		if len(args) == 0 {
			return c, api.Errorf(api.KindInvalid, "run: name a pipeline (%s)", chatUsage)
		}
		c.Target, args = args[0], args[1:]
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return c, api.Errorf(api.KindInvalid, "run: %q is not k=v", a)
			}
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			c.Params[k] = v
		}
	case "status", "cancel":
		if len(args) != 1 {
			return c, api.Errorf(api.KindInvalid, "%s: name one run (%s)", c.Verb, chatUsage)
		}
		c.Target = args[0]
	case "list", "schedules", "help":
		if len(args) != 0 {
			return c, api.Errorf(api.KindInvalid, "%s takes no arguments", c.Verb)
		}
	default:
		return c, api.Errorf(api.KindInvalid, "unknown command %q (%s)", c.Verb, chatUsage)
	}
	return c, nil
}

// ChatAnswer is Slack's response format.
type ChatAnswer struct {
	ResponseType string `json:"response_type"` // ephemeral (only the caller) or in_channel
	Text         string `json:"text"`
}

// slack answers a slash command within Slack's three-second deadline: reads and cancels
// are quick Redis operations done before answering; a run is acknowledged at once and
// submitted afterwards, its outcome posted to response_url.
func (t *Triggers) slack(w http.ResponseWriter, r *http.Request, team string, tr state.Trigger, body []byte) error {
	ts, sig := r.Header.Get(HeaderSlackTimestamp), r.Header.Get(HeaderSlackSignature)
	if !VerifySlack(tr.Secret, ts, sig, body, t.now(), t.window()) {
		return errBadSignature
	}
	say := func(kind, format string, args ...any) error {
		rest.WriteJSON(w, http.StatusOK, ChatAnswer{ResponseType: kind, Text: fmt.Sprintf(format, args...)})
		return nil
	}
	c, err := ParseChatCommand(body)
	if err != nil {
		return say("ephemeral", "%s", errText(err))
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2500*time.Millisecond)
	defer cancel()
	switch c.Verb {
	case "help":
		return say("ephemeral", "%s", chatUsage)
	case "status":
		run, err := t.Submit.Store.GetRun(ctx, team, c.Target)
		if err != nil {
			return say("ephemeral", "%s", errText(err))
		}
		return say("ephemeral", "%s", runLine(run))
	case "list":
		runs, _, err := t.Store.ListRuns(ctx, team, state.ListOptions{PageSize: 10, SortBy: "created_at desc"},
			state.RunFilter{StorageState: api.StorageAvailable})
		if err != nil {
			return say("ephemeral", "%s", errText(err))
		}
		if len(runs) == 0 {
			return say("ephemeral", "no runs yet")
		}
		lines := make([]string, len(runs))
		for i, run := range runs {
			lines[i] = runLine(run)
		}
		return say("ephemeral", "%s", strings.Join(lines, "\n"))
	case "schedules":
		rrs, _, err := t.Store.ListRecurringRuns(ctx, team, state.ListOptions{PageSize: 20})
		if err != nil {
			return say("ephemeral", "%s", errText(err))
		}
		if len(rrs) == 0 {
			return say("ephemeral", "no recurring runs")
		}
		lines := make([]string, len(rrs))
		for i, rr := range rrs {
			lines[i] = fmt.Sprintf("%s  %s  %s  %s", rr.RecurringRunID, rr.DisplayName, scheduleText(rr.Trigger), rr.Status)
		}
		return say("ephemeral", "%s", strings.Join(lines, "\n"))
	case "cancel":
		if err := t.Submit.Terminate(ctx, team, c.Target); err != nil {
			return say("ephemeral", "%s", errText(err))
		}
		return say("in_channel", "%s asked to cancel run %s", c.User, c.Target)
	}
	// run
	p, err := t.Submit.Store.GetPipelineByName(ctx, team, c.Target)
	if err != nil {
		return say("ephemeral", "%s", errText(err))
	}
	run := api.Run{
		DisplayName:              fmt.Sprintf("%s (chat, %s)", p.DisplayName, c.User),
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID},
	}
	if len(c.Params) > 0 {
		params := make(map[string]any, len(c.Params))
		for k, v := range c.Params {
			params[k] = v
		}
		run.RuntimeConfig = &api.RuntimeConfig{Parameters: params}
	}
	respond := c.ResponseURL
	t.submitLater(team, run, idemKey("slack", tr.TriggerID, sig), func(stored api.Run, err error) {
		a := ChatAnswer{ResponseType: "in_channel", Text: fmt.Sprintf("started %s", runLine(stored))}
		if err != nil {
			a = ChatAnswer{ResponseType: "ephemeral", Text: fmt.Sprintf("run of %s not started: %s", c.Target, errText(err))}
		}
		t.postAnswer(respond, a)
	})
	return say("ephemeral", "starting a run of %s ...", p.DisplayName)
}

func runLine(r api.Run) string {
	return fmt.Sprintf("%s  %s  %s", r.RunID, r.DisplayName, r.State)
}

func scheduleText(tr api.Trigger) string {
	switch {
	case tr.CronSchedule != nil:
		return "cron " + tr.CronSchedule.Cron
	case tr.PeriodicSchedule != nil:
		return fmt.Sprintf("every %ds", tr.PeriodicSchedule.IntervalSecond)
	}
	return ""
}

// errText is an error as a chat user may see it: the API message for kinded errors, a
// generic one for internal errors (whose text may carry details).
func errText(err error) string {
	_, _, msg := api.StatusOf(err)
	return msg
}

// postAnswer posts a delayed answer to a chat's response_url, if allowed.
func (t *Triggers) postAnswer(to string, a ChatAnswer) {
	allow := t.AllowResponseURL
	if allow == nil {
		allow = func(u string) bool { return strings.HasPrefix(u, "https://hooks.slack.com/") }
	}
	if to == "" || !allow(to) {
		if to != "" {
			// Response URLs are capabilities; log where, not the whole address.
			host := "?"
			if u, err := url.Parse(to); err == nil {
				host = u.Host
			}
			t.log().Warn("chat response_url refused", "host", host)
		}
		return
	}
	b, _ := json.Marshal(a)
	client := t.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(b))
	if err != nil {
		t.log().Warn("chat answer", "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.log().Warn("chat answer", "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.log().Warn("chat answer refused", "status", resp.Status)
	}
}
