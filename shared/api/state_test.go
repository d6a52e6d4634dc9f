package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestCanTransition(t *testing.T) {
	all := []string{StatePending, StateRunning, StateCanceling, StateSucceeded, StateSkipped, StateFailed, StateCanceled, StateCached}
	forward := map[[2]string]bool{}
	for _, to := range all[1:] {
		forward[[2]string{StatePending, to}] = true
	}
	for _, to := range all[2:] {
		forward[[2]string{StateRunning, to}] = true
	}
	for _, to := range all[3:] {
		forward[[2]string{StateCanceling, to}] = true
	}
	for _, from := range all {
		for _, to := range all {
			want := forward[[2]string{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
		if !CanTransition("", from) {
			t.Errorf("a new record must accept %s", from)
		}
		if CanTransition(from, "BOGUS") {
			t.Errorf("CanTransition(%s, BOGUS) must be false", from)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	base := errors.New("redis: connection refused at 10.0.0.1")
	cases := []struct {
		err        error
		status     int
		code       int
		msg        string
		isNotFound bool
	}{
		{Errorf(KindNotFound, "run %q not found", "r1"), http.StatusNotFound, 5, `run "r1" not found`, true},
		{fmt.Errorf("wrapped: %w", Errorf(KindInvalid, "bad param %q", "lr")), http.StatusBadRequest, 3, `bad param "lr"`, false},
		{Errorf(KindConflict, "exists"), http.StatusConflict, 6, "exists", false},
		{base, http.StatusInternalServerError, 13, "internal error", false},
		{Errorf(KindInternal, "store: %w", base), http.StatusInternalServerError, 13, "internal error", false},
	}
	for _, c := range cases {
		st, code, msg := StatusOf(c.err)
		if st != c.status || code != c.code || msg != c.msg {
			t.Errorf("StatusOf(%v) = %d %d %q, want %d %d %q", c.err, st, code, msg, c.status, c.code, c.msg)
		}
		if got := errors.Is(c.err, ErrNotFound); got != c.isNotFound {
			t.Errorf("errors.Is(%v, ErrNotFound) = %v", c.err, got)
		}
	}
	if !errors.Is(Errorf(KindInternal, "store: %w", base), base) {
		t.Error("Errorf must wrap its %w argument")
	}
}
