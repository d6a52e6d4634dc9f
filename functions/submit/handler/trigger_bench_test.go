package handler

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/state"
)

// BenchmarkGitHubWebhook measures a signed GitHub push from request to 2xx answer over
// loopback HTTP with a real Redis (trigger lookup, signature check, parse, 202), and
// reports the latency percentiles. Each request is a new delivery, so each also submits a
// run in the background, as production does.
func BenchmarkGitHubWebhook(b *testing.B) {
	env := newTriggerEnv(b)
	tr := env.trigger(b, state.Trigger{Kind: state.TriggerGitHub, PipelineID: env.pipeline.PipelineID, Secret: secret,
		Parameters: map[string]string{"message": "sha"}})
	push, err := os.ReadFile("testdata/github-push.json")
	if err != nil {
		b.Fatal(err)
	}
	sig := "sha256=" + SignHMAC(secret, push)
	url := env.srv.URL + HookPath(team, tr.TriggerID)
	client := &http.Client{}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(push))
		req.Header.Set(HeaderGitHubEvent, "push")
		req.Header.Set(HeaderGitHubDelivery, fmt.Sprintf("bench-%d", i))
		req.Header.Set(HeaderGitHubSignature, sig)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	_ = env.tr.Wait(b.Context())
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
