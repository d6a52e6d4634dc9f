package cacheclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/lineage"
)

var key = strings.Repeat("0f", 32)

func TestLookup(t *testing.T) {
	var gotQuery, gotAuth string
	tests := []struct {
		name    string
		status  int
		body    string
		maxAge  time.Duration
		query   string
		wantOK  bool
		wantHit lineage.CacheHit
		wantErr string
	}{
		{name: "hit", status: 200, body: `{"execution":{"id":"exe-1","run_id":"r","task_id":"t","state":"SUCCEEDED"},"outputs":{},"recorded_at":"2026-01-01T00:00:00Z"}`,
			maxAge: 90 * time.Minute, query: "max_age=5400", wantOK: true,
			wantHit: lineage.CacheHit{Execution: lineage.Execution{ID: "exe-1", RunID: "r", TaskID: "t", State: "SUCCEEDED"},
				Outputs: map[string][]lineage.Artifact{}, RecordedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "sub-second max age rounds up", status: 404, body: `{"code":5,"message":"no cached execution"}`, maxAge: 1500 * time.Millisecond, query: "max_age=2"},
		{name: "miss", status: 404, body: `{"code":5,"message":"no cached execution"}`},
		{name: "bare 404 is an error", status: 404, body: "404 page not found\n", wantErr: "HTTP 404"},
		{name: "server error", status: 503, body: `{"code":14,"message":"lineage store unavailable"}`, wantErr: "lineage store unavailable (HTTP 503, code 14)"},
		{name: "garbage hit", status: 200, body: `{"execution":`, wantErr: "decode answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/prefix/apis/v2beta1/cache/"+key {
					t.Errorf("path %s", r.URL.Path)
				}
				gotQuery, gotAuth = r.URL.RawQuery, r.Header.Get("Authorization")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := New(srv.URL+"/prefix/", nil, http.Header{"Authorization": {"Bearer tok"}})
			if err != nil {
				t.Fatal(err)
			}
			hit, ok, err := c.Lookup(context.Background(), key, tc.maxAge)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK || gotQuery != tc.query || gotAuth != "Bearer tok" {
				t.Errorf("ok=%v query=%q auth=%q; want ok=%v query=%q auth set", ok, gotQuery, gotAuth, tc.wantOK, tc.query)
			}
			if diff := cmp.Diff(tc.wantHit, hit); diff != "" {
				t.Errorf("hit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewAndKeyChecks(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := New(u, nil, nil); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
	c, err := New("http://127.0.0.1:1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Lookup(context.Background(), "../../etc", 0); err == nil {
		t.Error("Lookup with a malformed key: no error")
	}
}
