package handler

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/schedule"
	"github.com/pipefn/pipefn/shared/state"
)

// TeamHeader carries the team on the requests the HTTP submitter makes: the submit
// function's authenticator uses it to pick one team of a caller that belongs to several.
// It is never trusted on its own.
const TeamHeader = "X-Pipefn-Team"

// maxBody bounds a create request; an inline pipeline_spec is the large part.
const maxBody = 8 << 20

// Routes mounts the recurring-run API on mux:
//
//	POST   /apis/v2beta1/recurringruns
//	GET    /apis/v2beta1/recurringruns?page_size=&page_token=&sort_by=
//	GET    /apis/v2beta1/recurringruns/{id}
//	GET    /apis/v2beta1/recurringruns/{id}:next?count=N   (pipefn: coming fire times)
//	DELETE /apis/v2beta1/recurringruns/{id}
//	POST   /apis/v2beta1/recurringruns/{id}:enable
//	POST   /apis/v2beta1/recurringruns/{id}:disable
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /apis/v2beta1/recurringruns", h.create)
	mux.HandleFunc("GET /apis/v2beta1/recurringruns", h.list)
	// A path wildcard is a whole segment, so "{id}:enable" arrives as one segment and
	// the verb is split off here.
	mux.HandleFunc("GET /apis/v2beta1/recurringruns/{id}", h.get)
	mux.HandleFunc("DELETE /apis/v2beta1/recurringruns/{id}", h.delete)
	mux.HandleFunc("POST /apis/v2beta1/recurringruns/{id}", h.verb)
}

// ServeHTTP serves the recurring-run API alone (Routes on a fresh mux).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	h.Routes(mux)
	mux.ServeHTTP(w, r)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// team resolves a request's team. There is no default: a header or query parameter
// naming the team would let any caller act for any team.
func (h *Handler) team(r *http.Request) (string, error) {
	if h.Team == nil {
		return "", api.Errorf(api.KindUnauthenticated, "this schedule function has no team resolver")
	}
	return h.Team(r)
}

func writeJSON(w http.ResponseWriter, status int, v any) { rest.WriteJSON(w, status, v) }

// writeError writes err as KFP does: {"code": <gRPC code>, "message": ...}.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	rest.WriteError(w, r, h.log(), err)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var rr api.RecurringRun
	if err := rest.DecodeJSON(w, r, maxBody, &rr); err != nil {
		h.writeError(w, r, err)
		return
	}
	// Server-owned fields are not taken from the client.
	rr.CreatedAt, rr.UpdatedAt, rr.Status, rr.Error = time.Time{}, time.Time{}, "", nil
	// The schedule's own fields first (every problem at once), then what it refers to.
	if err := schedule.Validate(rr, h.now()); err != nil {
		h.writeError(w, r, &api.Error{Kind: api.KindInvalid, Message: err.Error(), Err: err})
		return
	}
	if err := h.checkRefs(r.Context(), team, rr); err != nil {
		h.writeError(w, r, err)
		return
	}
	created, err := h.Store.CreateRecurringRun(r.Context(), team, rr)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, created)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	size, token, err := rest.Paging(r, 20, 1000)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	opts := state.ListOptions{PageSize: size, PageToken: token, SortBy: r.URL.Query().Get("sort_by")}
	rrs, next, err := h.Store.ListRecurringRuns(r.Context(), team, opts)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	total, err := h.Store.CountRecurringRuns(r.Context(), team)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if rrs == nil {
		rrs = []api.RecurringRun{}
	}
	// KFP's ListRecurringRunsResponse names the list recurringRuns.
	writeJSON(w, http.StatusOK, rest.ListBody("recurringRuns", rrs, total, next))
}

func splitVerb(seg string) (id, verb string) { return rest.SplitAction(seg) }

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id, verb := splitVerb(r.PathValue("id"))
	switch verb {
	case "":
		rr, err := h.Store.GetRecurringRun(r.Context(), team, id)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, rr)
	case "next":
		h.next(w, r, team, id)
	default:
		h.writeError(w, r, api.Errorf(api.KindNotFound, "GET %s: unknown method %q", r.URL.Path, verb))
	}
}

// nextResponse lists coming fire times.
type nextResponse struct {
	RecurringRunID string      `json:"recurring_run_id"`
	TimeZone       string      `json:"time_zone,omitempty"`
	NextFireTimes  []time.Time `json:"next_fire_times"`
}

// maxNext bounds :next?count=.
const maxNext = 1000

func (h *Handler) next(w http.ResponseWriter, r *http.Request, team, id string) {
	count := 5
	if s := r.URL.Query().Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxNext {
			h.writeError(w, r, api.Errorf(api.KindInvalid, "count %q: must be a number from 1 to %d", s, maxNext))
			return
		}
		count = n
	}
	rr, err := h.Store.GetRecurringRun(r.Context(), team, id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	resp := nextResponse{RecurringRunID: id, TimeZone: rr.TimeZone, NextFireTimes: []time.Time{}}
	if rr.Mode != api.ModeDisable {
		sch, err := schedule.Parse(rr.Trigger, rr.TimeZone)
		if err != nil {
			h.writeError(w, r, fmt.Errorf("recurring run %s: stored trigger does not parse: %w", id, err))
			return
		}
		// Far enough for any schedule that fires at all; Slots stops at count.
		now := h.now()
		for _, t := range sch.Slots(now, now.AddDate(10, 0, 0), count) {
			resp.NextFireTimes = append(resp.NextFireTimes, t.In(sch.Location()))
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id, verb := splitVerb(r.PathValue("id"))
	if verb != "" {
		h.writeError(w, r, api.Errorf(api.KindNotFound, "DELETE %s: unknown method %q", r.URL.Path, verb))
		return
	}
	if err := h.Store.DeleteRecurringRun(r.Context(), team, id); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *Handler) verb(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id, verb := splitVerb(r.PathValue("id"))
	var mode string
	switch verb {
	case "enable":
		mode = api.ModeEnable
	case "disable":
		mode = api.ModeDisable
	default:
		h.writeError(w, r, api.Errorf(api.KindNotFound, "POST %s: unknown method %q (want :enable or :disable)", r.URL.Path, verb))
		return
	}
	if _, err := h.Store.SetRecurringRunMode(r.Context(), team, id, mode); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
