package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pipefn/pipefn/shared/api"
)

// HTTPSubmitter returns a SubmitFunc that creates runs through the submit function's
// REST API: POST {baseURL}/apis/v2beta1/runs with the run as body, the idempotency key in
// the Idempotency-Key header and the team in X-Pipefn-Team (and KFP's namespace
// parameter). Answers map back to error kinds so that the tick can tell a run that can
// never be created (4xx: not retried) from an outage (5xx, network: retried by the next
// tick); 409 means the run exists and counts as submitted.
func HTTPSubmitter(baseURL string, client *http.Client) SubmitFunc {
	if client == nil {
		client = http.DefaultClient
	}
	endpoint := strings.TrimRight(baseURL, "/") + "/apis/v2beta1/runs"
	return func(ctx context.Context, team string, run api.Run, key string) error {
		// The submit function assigns run ids itself and refuses one from a client; the
		// slot's id travels as the idempotency key, which is what makes it exactly once.
		runID := run.RunID
		run.RunID = ""
		body, err := json.Marshal(run)
		if err != nil {
			return fmt.Errorf("encode run %s: %w", runID, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"?namespace="+url.QueryEscape(team), bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("submit run %s: %w", runID, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		req.Header.Set(TeamHeader, team)
		resp, err := client.Do(req)
		if err != nil {
			return &api.Error{Kind: api.KindUnavailable, Message: "submit function unreachable", Err: fmt.Errorf("submit run %s: %w", runID, err)}
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode < 300 {
			return nil
		}
		var st api.Status
		text := strings.TrimSpace(string(msg))
		if json.Unmarshal(msg, &st) == nil && st.Message != "" {
			text = st.Message
		}
		kind := api.KindUnavailable
		switch {
		case resp.StatusCode == http.StatusConflict:
			kind = api.KindConflict
		case resp.StatusCode == http.StatusNotFound:
			kind = api.KindNotFound
		case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
			kind = api.KindUnavailable
		case resp.StatusCode == http.StatusPreconditionFailed:
			kind = api.KindFailedPrecondition
		case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
			kind = api.KindPermissionDenied
		case resp.StatusCode < 500:
			kind = api.KindInvalid
		}
		return api.Errorf(kind, "submit run %s: %s: %s", runID, resp.Status, text)
	}
}

// InProcess adapts an in-process submit path, such as the submit function handler's
// SubmitRun when every function runs in one process (pipefn up), to a SubmitFunc. Like
// HTTPSubmitter it leaves the run id to the submit path and passes the slot's id as the
// idempotency key.
func InProcess(submit func(ctx context.Context, team string, run api.Run, idempotencyKey string) (api.Run, error)) SubmitFunc {
	return func(ctx context.Context, team string, run api.Run, key string) error {
		run.RunID = ""
		_, err := submit(ctx, team, run, key)
		return err
	}
}
