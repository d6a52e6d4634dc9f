// Package rest holds the small pieces every pipefn HTTP handler shares: JSON answers,
// errors as {"code","message"} with the status of their kind, bounded request bodies,
// and KFP's paging parameters.
package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/pipefn/pipefn/shared/api"
)

// MaxJSONBody bounds a JSON request body.
const MaxJSONBody = 4 << 20

// WriteJSON answers v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the error answer, as KFP's REST API writes it.
type ErrorBody struct {
	Error   string `json:"error"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// WriteError answers err with the status of its kind. Internal errors are logged with
// their detail and answered with a generic message.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, code, msg := api.StatusOf(err)
	if status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteJSON(w, status, ErrorBody{Error: msg, Code: code, Message: msg})
}

// DecodeJSON reads at most limit bytes of JSON into v, refusing unknown fields so that a
// misspelt field is an error, not a silent default.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if limit <= 0 {
		limit = MaxJSONBody
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.Errorf(api.KindTooLarge, "request body is larger than %d bytes", limit)
		}
		if errors.Is(err, io.EOF) {
			return api.Errorf(api.KindInvalid, "request body is empty")
		}
		return api.Errorf(api.KindInvalid, "request body: %v", err)
	}
	if dec.More() {
		return api.Errorf(api.KindInvalid, "request body: more than one JSON value")
	}
	return nil
}

// Paging reads KFP's page_size and page_token query parameters. page_size defaults to
// def and is capped at max.
func Paging(r *http.Request, def, max int) (size int, token string, err error) {
	size = def
	if s := r.URL.Query().Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, "", api.Errorf(api.KindInvalid, "page_size %q: want a non-negative integer", s)
		}
		if n > 0 {
			size = n
		}
	}
	if size > max {
		size = max
	}
	return size, r.URL.Query().Get("page_token"), nil
}

// ListBody is the shape of KFP's list answers: the items under their plural name, the
// total and the next page's token.
func ListBody(name string, items any, total int, next string) map[string]any {
	return map[string]any{name: items, "total_size": total, "next_page_token": next}
}

// SplitAction splits a KFP custom-method segment "{id}:verb" into id and verb.
func SplitAction(seg string) (id, verb string) {
	for i := len(seg) - 1; i >= 0; i-- {
		if seg[i] == ':' {
			return seg[:i], seg[i+1:]
		}
	}
	return seg, ""
}

// NotFound answers a route that does not exist.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, nil, api.Errorf(api.KindNotFound, "no route %s %s", r.Method, r.URL.Path))
}

// Errorf is a shorthand for an invalid-argument error.
func Errorf(format string, args ...any) error {
	return api.Errorf(api.KindInvalid, "%s", fmt.Sprintf(format, args...))
}

// TeamHandler serves one request for an authenticated team.
type TeamHandler func(w http.ResponseWriter, r *http.Request, team string) error

// WithTeam authenticates first (teamOf names the caller's team or refuses), then runs fn;
// an error of either becomes KFP's error answer.
func WithTeam(teamOf func(*http.Request) (string, error), log *slog.Logger, fn TeamHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		team, err := teamOf(r)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		if err := fn(w, r, team); err != nil {
			WriteError(w, r, log, err)
		}
	}
}
