package schedule

import (
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// FuzzValidate feeds arbitrary cron expressions and zones through Validate and the slot
// search: user input must never panic, and slots must increase.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/0 * * * *", "0 0 30 2 *", "@daily", "1-5/2 * * * * *", "? ? ? ? ?", "0 0 * * 7", "59 23 31 12 *"} {
		f.Add(s, "Europe/Berlin")
	}
	now := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cron, tz string) {
		rr := api.RecurringRun{DisplayName: "f", PipelineSpec: []byte("{}"), TimeZone: tz,
			Trigger: api.Trigger{CronSchedule: &api.CronSchedule{Cron: cron}}}
		if Validate(rr, now) != nil {
			return
		}
		s, err := Parse(rr.Trigger, tz)
		if err != nil {
			t.Fatalf("Validate accepted what Parse refuses: %v", err)
		}
		prev := now
		for i := 0; i < 5; i++ {
			n := s.Next(prev)
			if n.IsZero() {
				return
			}
			if !n.After(prev) {
				t.Fatalf("Next(%s) = %s", prev, n)
			}
			prev = n
		}
	})
}
