package handler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

type call struct {
	method, path, body string
	team               string
}

func do(t *testing.T, h http.Handler, c call) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.team != "" {
		req.Header.Set(TeamHeader, c.team)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", c.method, c.path, rec.Body.String(), err)
	}
	return rec.Code, out
}

func TestREST(t *testing.T) {
	srv := redistest.StartServer(t)
	now := ts("2026-03-01T12:00:00Z")
	h := &Handler{
		Store: state.New(srv.Client(), func() time.Time { return now }),
		Now:   func() time.Time { return now },
		Log:   quiet(),
		// Stands in for the authenticator: the test names the team per request.
		Team: func(r *http.Request) (string, error) { return r.Header.Get(TeamHeader), nil },
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	const base = "/apis/v2beta1/recurringruns"

	// KFP's sequential_v2 sample (testdata, from the KFP repository): one STRING
	// parameter, url.
	irYAML, err := os.ReadFile("testdata/sequential_v2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.YAMLToJSON(irYAML)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"recurring_run_id":"nightly","display_name":"nightly","pipeline_spec":` + string(spec) + `,
		"runtime_config":{"parameters":{"url":"gs://bucket/[[ScheduledTime.2006-01-02]]"}},
		"trigger":{"cron_schedule":{"cron":"0 30 2 * * *"}},"time_zone":"America/New_York","max_concurrency":"1"}`
	code, got := do(t, mux, call{method: "POST", path: base, body: body, team: team})
	if code != 200 || got["status"] != api.StatusEnabled || got["mode"] != api.ModeEnable || got["namespace"] != team {
		t.Fatalf("create: %d %v", code, got)
	}

	// Coming fire times across the spring-forward change: 02:30 on 8 March fires at 03:00 EDT.
	code, got = do(t, mux, call{method: "GET", path: base + "/nightly:next?count=9", team: team})
	if code != 200 {
		t.Fatalf(":next: %d %v", code, got)
	}
	times := got["next_fire_times"].([]any)
	if diff := cmp.Diff([]any{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}, times[5:8]); diff != "" {
		t.Errorf(":next around DST (-want +got):\n%s", diff)
	}

	errTests := []struct {
		name string
		c    call
		code int
		msg  string
	}{
		{"bad cron", call{"POST", base, `{"display_name":"x","pipeline_spec":{},"trigger":{"cron_schedule":{"cron":"* * *"}}}`, team}, 400,
			`invalid recurring run: trigger.cron_schedule.cron: cron expression "* * *": expected 5 to 6 fields, found 3: [* * *]`},
		{"unknown zone and negative concurrency", call{"POST", base,
			`{"display_name":"x","pipeline_spec":{},"trigger":{"periodic_schedule":{"interval_second":"60"}},"time_zone":"Nowhere/City","max_concurrency":"-1"}`, team}, 400,
			`invalid recurring run: max_concurrency: must be 0 (unlimited) or more, got -1; time_zone: unknown IANA time zone "Nowhere/City"`},
		{"zero interval", call{"POST", base, `{"display_name":"x","pipeline_spec":{},"trigger":{"periodic_schedule":{"interval_second":"0"}}}`, team}, 400,
			`invalid recurring run: trigger.periodic_schedule.interval_second: must be a positive number of seconds, got 0`},
		{"bad catchup", call{"POST", base, `{"display_name":"x","pipeline_spec":{},"trigger":{"cron_schedule":{"cron":"@daily"}},"catchup":"some"}`, team}, 400,
			`invalid recurring run: catchup: must be one of none, latest, all; got "some"`},
		{"duplicate id", call{"POST", base, body, team}, 409, "recurring run nightly already exists"},
		{"unknown field", call{"POST", base, `{"display_name":"x","cron":"* * * * *"}`, team}, 400,
			`request body: json: unknown field "cron"`},
		{"not found", call{"GET", base + "/nope", "", team}, 404, "recurring run nope not found"},
		{"unknown pipeline", call{"POST", base, `{"display_name":"x","pipeline_version_reference":{"pipeline_id":"nope"},"trigger":{"cron_schedule":{"cron":"@daily"}}}`, team}, 404,
			"pipeline nope not found"},
		{"unknown experiment", call{"POST", base, `{"display_name":"x","experiment_id":"nope","pipeline_spec":` + string(spec) + `,"trigger":{"cron_schedule":{"cron":"@daily"}}}`, team}, 404,
			"experiment nope not found"},
		{"parameter that does not bind", call{"POST", base, `{"display_name":"x","pipeline_spec":` + string(spec) + `,"runtime_config":{"parameters":{"url":"u","nope":1}},"trigger":{"cron_schedule":{"cron":"@daily"}}}`, team}, 400,
			`runtime_config: invalid pipeline: parameters['nope']: unknown pipeline parameter "nope" (declared: url)`},
		{"spec that is not IR", call{"POST", base, `{"display_name":"x","pipeline_spec":{"a":1},"trigger":{"cron_schedule":{"cron":"@daily"}}}`, team}, 400,
			`pipeline_spec: invalid pipeline: a: unknown field "a" at top level of the pipeline spec`},
		{"other team", call{"GET", base + "/nightly", "", "team-b"}, 404, "recurring run nightly not found"},
		{"unknown verb", call{"POST", base + "/nightly:pause", "", team}, 404,
			`POST /apis/v2beta1/recurringruns/nightly:pause: unknown method "pause" (want :enable or :disable)`},
		{"bad count", call{"GET", base + "/nightly:next?count=0", "", team}, 400, `count "0": must be a number from 1 to 1000`},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			code, got := do(t, mux, tc.c)
			if code != tc.code || got["message"] != tc.msg {
				t.Errorf("got %d %q, want %d %q", code, got["message"], tc.code, tc.msg)
			}
			if _, ok := got["code"].(float64); !ok {
				t.Errorf("error answer has no numeric code: %v", got)
			}
		})
	}

	// Disable, then the listing shows it; enable again.
	if code, got := do(t, mux, call{method: "POST", path: base + "/nightly:disable", team: team}); code != 200 {
		t.Fatalf("disable: %d %v", code, got)
	}
	code, got = do(t, mux, call{method: "GET", path: base + "/nightly", team: team})
	if code != 200 || got["status"] != api.StatusDisabled {
		t.Errorf("after disable: %d %v", code, got)
	}
	code, got = do(t, mux, call{method: "GET", path: base + "/nightly:next", team: team})
	if code != 200 || len(got["next_fire_times"].([]any)) != 0 {
		t.Errorf(":next of a disabled schedule: %d %v", code, got)
	}
	if code, got := do(t, mux, call{method: "POST", path: base + "/nightly:enable", team: team}); code != 200 {
		t.Fatalf("enable: %d %v", code, got)
	}

	// Paging over three schedules, two per page.
	for _, id := range []string{"b", "c"} {
		now = now.Add(time.Second)
		b := strings.Replace(body, `"nightly"`, `"`+id+`"`, 1)
		if code, got := do(t, mux, call{method: "POST", path: base, body: b, team: team}); code != 200 {
			t.Fatalf("create %s: %d %v", id, code, got)
		}
	}
	var ids []string
	token := ""
	for page := 0; page < 3; page++ {
		code, got := do(t, mux, call{method: "GET", path: base + "?page_size=2&page_token=" + token, team: team})
		if code != 200 {
			t.Fatalf("list: %d %v", code, got)
		}
		for _, it := range got["recurringRuns"].([]any) {
			ids = append(ids, it.(map[string]any)["recurring_run_id"].(string))
		}
		if got["total_size"].(float64) != 3 {
			t.Errorf("total_size = %v", got["total_size"])
		}
		token, _ = got["next_page_token"].(string)
		if token == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"nightly", "b", "c"}, ids); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}

	if code, got := do(t, mux, call{method: "DELETE", path: base + "/b", team: team}); code != 200 {
		t.Fatalf("delete: %d %v", code, got)
	}
	if code, _ := do(t, mux, call{method: "DELETE", path: base + "/b", team: team}); code != 404 {
		t.Errorf("second delete: %d, want 404", code)
	}
}

func TestHTTPSubmitter(t *testing.T) {
	var gotKey, gotTeam string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/v2beta1/runs" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		gotKey, gotTeam = r.Header.Get("Idempotency-Key"), r.Header.Get(TeamHeader)
		var run map[string]any
		if err := json.NewDecoder(r.Body).Decode(&run); err != nil || run["run_id"] != "" || run["recurring_run_id"] != "rr" {
			t.Errorf("submitted body %v (%v): want no run id and the recurring run id", run, err)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(api.Status{Code: 3, Message: "pipeline version v not found"})
	}))
	defer srv.Close()
	submit := HTTPSubmitter(srv.URL+"/", nil)
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		kind   api.Kind
	}{{200, -1}, {409, api.KindConflict}, {404, api.KindNotFound}, {400, api.KindInvalid}, {503, api.KindUnavailable}, {500, api.KindUnavailable}} {
		status = tc.status
		err := submit(ctx, team, api.Run{RunID: "r1", RecurringRunID: "rr"}, "r1")
		if tc.kind < 0 {
			if err != nil {
				t.Errorf("status %d: %v", tc.status, err)
			}
		} else if api.KindOf(err) != tc.kind {
			t.Errorf("status %d: error %v has kind %v, want %v", tc.status, err, api.KindOf(err), tc.kind)
		}
	}
	if gotKey != "r1" || gotTeam != team {
		t.Errorf("headers: key %q team %q", gotKey, gotTeam)
	}
	srv.Close()
	if err := submit(ctx, team, api.Run{RunID: "r1", RecurringRunID: "rr"}, "r1"); api.KindOf(err) != api.KindUnavailable {
		t.Errorf("closed server: %v, want unavailable", err)
	}
}

func TestInProcess(t *testing.T) {
	var got api.Run
	var gotKey string
	submit := InProcess(func(_ context.Context, _ string, run api.Run, key string) (api.Run, error) {
		got, gotKey = run, key
		return run, nil
	})
	if err := submit(context.Background(), team, api.Run{RunID: "slot", RecurringRunID: "rr"}, "slot"); err != nil {
		t.Fatal(err)
	}
	if got.RunID != "" || got.RecurringRunID != "rr" || gotKey != "slot" {
		t.Errorf("submitted %+v with key %q", got, gotKey)
	}
}
