package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// Routes mounts the reads of runs on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	const p = "/apis/v2beta1"
	mux.HandleFunc("GET "+p+"/runs", h.team(h.listRuns))
	mux.HandleFunc("GET "+p+"/runs/{id}", h.team(h.getRun))
	mux.HandleFunc("GET "+p+"/runs/{id}/events", h.team(h.watch))
	mux.HandleFunc("GET "+p+"/runs/{id}/nodes/{node}/log", h.team(h.log_))
}

// team authenticates first, then runs fn; errors become KFP error answers.
func (h *Handler) team(fn rest.TeamHandler) http.HandlerFunc {
	return rest.WithTeam(h.TeamOf, h.Log, fn)
}

func (h *Handler) getRun(w http.ResponseWriter, r *http.Request, team string) error {
	run, err := h.Store.GetRun(r.Context(), team, r.PathValue("id"))
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, run)
	return nil
}

// listRuns serves KFP's ListRuns: page_size, page_token, sort_by, experiment_id, and the
// filter predicates pipefn indexes (state, experiment_id, pipeline_version_id,
// storage_state). A predicate it cannot serve from an index is refused, not ignored.
func (h *Handler) listRuns(w http.ResponseWriter, r *http.Request, team string) error {
	size, token, err := rest.Paging(r, 20, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := state.RunFilter{ExperimentID: q.Get("experiment_id"), StorageState: api.StorageAvailable}
	if raw := q.Get("filter"); raw != "" {
		if err := applyFilter(raw, &f); err != nil {
			return err
		}
	}
	if s := q.Get("storage_state"); s != "" {
		f.StorageState = s
	}
	if f.StorageState == "ALL" {
		f.StorageState = ""
	}
	runs, next, err := h.Store.ListRuns(r.Context(), team, state.ListOptions{PageSize: size, PageToken: token, SortBy: q.Get("sort_by")}, f)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []api.Run{}
	}
	rest.WriteJSON(w, http.StatusOK, rest.ListBody("runs", runs, len(runs), next))
	return nil
}

// kfpFilter is KFP's filter JSON: {"predicates":[{"key","operation","string_value"}]}.
type kfpFilter struct {
	Predicates []struct {
		Key         string `json:"key"`
		Operation   string `json:"operation"`
		Op          string `json:"op"`
		StringValue string `json:"string_value"`
		StringValu2 string `json:"stringValue"`
	} `json:"predicates"`
}

func applyFilter(raw string, f *state.RunFilter) error {
	var kf kfpFilter
	if err := json.Unmarshal([]byte(raw), &kf); err != nil {
		return api.Errorf(api.KindInvalid, "filter: not KFP filter JSON: %v", err)
	}
	for i, p := range kf.Predicates {
		op := strings.ToUpper(p.Operation + p.Op)
		val := p.StringValue + p.StringValu2
		if op != "EQUALS" && op != "1" {
			return api.Errorf(api.KindInvalid, "filter.predicates[%d]: operation %q is not supported (EQUALS only)", i, op)
		}
		switch p.Key {
		case "state":
			if !api.ValidState(val) {
				return api.Errorf(api.KindInvalid, "filter.predicates[%d]: unknown state %q", i, val)
			}
			f.State = val
		case "experiment_id":
			f.ExperimentID = val
		case "pipeline_version_id", "pipeline_version_reference.pipeline_version_id":
			f.PipelineVersionID = val
		case "storage_state":
			f.StorageState = val
		default:
			return api.Errorf(api.KindInvalid, "filter.predicates[%d]: key %q is not supported (state, experiment_id, pipeline_version_id, storage_state)", i, p.Key)
		}
	}
	return nil
}

// watch streams a run as server-sent events: the run as it is now, then again after
// every change, until it ends or the client leaves. Each event's id is the history
// position, so a client reconnecting with Last-Event-ID misses nothing.
func (h *Handler) watch(w http.ResponseWriter, r *http.Request, team string) error {
	ctx := r.Context()
	id := r.PathValue("id")
	run, err := h.Store.GetRun(ctx, team, id)
	if err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported by the response writer")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The keep-alive goroutine and the watch callback both write: one at a time.
	var mu sync.Mutex
	send := func(evID string, run api.Run) error {
		b, err := json.Marshal(run)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if evID != "" {
			fmt.Fprintf(w, "id: %s\n", evID)
		}
		if _, err := fmt.Fprintf(w, "event: run\ndata: %s\n\n", b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}
	if err := send("", run); err != nil || api.Terminal(run.State) {
		return nil
	}
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = "$"
	}
	// Keep idle connections alive through proxies.
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-wctx.Done():
				return
			case <-keep.C:
				// A comment line; errors surface on the next real write.
				mu.Lock()
				_, _ = io.WriteString(w, ": keep-alive\n\n")
				fl.Flush()
				mu.Unlock()
			}
		}
	}()
	err = h.Store.Watch(wctx, team, id, from, func(ev state.RunEvent) error {
		cur, err := h.Store.GetRun(wctx, team, id)
		if err != nil {
			return err
		}
		if err := send(ev.ID, cur); err != nil {
			return err
		}
		if api.Terminal(cur.State) {
			return state.ErrStopWatch
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		h.log().WarnContext(ctx, "watch ended", "run", id, "err", err)
	}
	return nil
}

func (h *Handler) log_(w http.ResponseWriter, r *http.Request, team string) error {
	ctx := r.Context()
	id, node := r.PathValue("id"), r.PathValue("node")
	if _, err := h.Store.GetRun(ctx, team, id); err != nil {
		return err
	}
	if h.Logs == nil {
		return api.Errorf(api.KindNotFound, "no logs are kept for run %s", id)
	}
	rc, err := h.Logs.Open(ctx, team, id, node)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = io.Copy(w, rc)
	return err
}
