package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/redistest"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestRunServesAndDrains(t *testing.T) {
	srv := redistest.StartServer(t)
	port := freePort(t)
	env := map[string]string{"PORT": port, "REDIS_URL": "redis://" + srv.Addr() + "/0", "PIPEFN_TEAM": "ml"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func(k string) string { return env[k] })
	}()
	base := "http://127.0.0.1:" + port
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get("/healthz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the function did not come up within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s, want 200", code, body)
	}
	// A task.finished event in binary mode, then the artifact it wrote.
	req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(
		`{"run_id":"r1","lineage":{"execution":{"run_id":"r1","task_id":"train","state":"SUCCEEDED","end":"2026-01-01T00:00:00Z"},`+
			`"outputs":{"model":[{"uri":"s3://b/r1/train/model","type":"system.Model"}]}}}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-type": "dev.pipefn.task.finished.v1",
		"ce-source": "test", "ce-pfteam": "ml", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST event = %d, want 202", resp.StatusCode)
	}
	if code, body := get("/apis/v2beta1/runs/r1/artifacts"); code != 200 || !strings.Contains(body, `"producer_task":"train"`) {
		t.Errorf("run artifacts = %d %s", code, body)
	}
	// Redis gone: not ready.
	srv.Stop()
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down = %d, want 503", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after SIGTERM, want nil", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("run did not return after the context ended")
	}
}

func TestRunNeedsATeam(t *testing.T) {
	err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "PIPEFN_TEAM") {
		t.Errorf("err = %v, want one naming PIPEFN_TEAM", err)
	}
}
