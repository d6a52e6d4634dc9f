package tektonsim

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TaskRun names as Tekton's getNewRunNames gives them, and the order
// Tekton aggregates matrixed results in (sorted by name).
func TestRunNames(t *testing.T) {
	tests := []struct {
		name, pr, task string
		n              int
		want           []string
	}{
		{"single combination has no index", "pf-run-1", "work", 1, []string{"pf-run-1-work"}},
		{"matrix", "pf-run-1", "work", 3, []string{"pf-run-1-work-0", "pf-run-1-work-1", "pf-run-1-work-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, runNames(tt.pr, tt.task, tt.n)); d != "" {
				t.Errorf("runNames (-want +got):\n%s", d)
			}
		})
	}
	t.Run("too long: cut to fit with the index kept", func(t *testing.T) {
		task := strings.Repeat("t", 60)
		single := runNames("pf-run-1", task, 1)[0]
		if len(single) != 63 {
			t.Fatalf("single name %q: want 63 characters", single)
		}
		got := runNames("pf-run-1", task, 12)
		for i, n := range got {
			want := single[:63-len("-12")] + fmt.Sprintf("-%d", i)
			if n != want {
				t.Errorf("name %d = %q, want %q", i, n, want)
			}
		}
	})
	names := runNames("pf-run-1", "work", 12)
	sort.Strings(names)
	if d := cmp.Diff([]string{"pf-run-1-work-0", "pf-run-1-work-1", "pf-run-1-work-10", "pf-run-1-work-11", "pf-run-1-work-2"}, names[:5]); d != "" {
		t.Errorf("aggregation order (-want +got):\n%s", d)
	}
}
