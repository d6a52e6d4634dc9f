package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// Problem is one thing wrong with a recurring run, at a field path.
type Problem struct {
	Path    string
	Message string
}

// ValidationError lists every problem of a recurring run at once.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Path + ": " + p.Message
	}
	return "invalid recurring run: " + strings.Join(parts, "; ")
}

// Validate checks a recurring run as submitted for creation; every problem is reported
// with its field path, so bad input is refused at create time and never at fire time.
// now is used to refuse a cron that never fires again.
func Validate(rr api.RecurringRun, now time.Time) error {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(rr.DisplayName) == "" {
		add("display_name", "is required")
	}
	hasRef := rr.PipelineVersionReference != nil &&
		(rr.PipelineVersionReference.PipelineID != "" || rr.PipelineVersionReference.PipelineVersionID != "")
	switch {
	case hasRef && len(rr.PipelineSpec) > 0:
		add("pipeline_spec", "set either pipeline_version_reference or pipeline_spec, not both")
	case !hasRef && len(rr.PipelineSpec) == 0:
		add("pipeline_version_reference", "one of pipeline_version_reference or pipeline_spec is required")
	}
	if rr.MaxConcurrency < 0 {
		add("max_concurrency", "must be 0 (unlimited) or more, got %d", rr.MaxConcurrency)
	}
	switch rr.Mode {
	case "", api.ModeEnable, api.ModeDisable:
	default:
		add("mode", "must be %s or %s, got %q", api.ModeEnable, api.ModeDisable, rr.Mode)
	}
	switch rr.Catchup {
	case "", api.CatchupNone, api.CatchupLatest, api.CatchupAll:
	default:
		add("catchup", "must be one of none, latest, all; got %q", rr.Catchup)
	}
	if rr.NoCatchup && rr.Catchup == api.CatchupAll {
		add("catchup", "\"all\" contradicts no_catchup=true")
	}
	if rr.CatchupCap < 0 {
		add("catchup_cap", "must be 0 (default %d) or more, got %d", api.DefaultCatchCap, rr.CatchupCap)
	}
	if _, err := LoadZone(rr.TimeZone); err != nil {
		add("time_zone", "%s", strings.TrimPrefix(err.Error(), "time_zone: "))
	} else if s, err := Parse(rr.Trigger, rr.TimeZone); err != nil {
		path, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok {
			path, msg = "trigger", err.Error()
		}
		add(path, "%s", msg)
	} else if s.cron != nil {
		from := now
		if s.start != nil && s.start.After(from) {
			from = *s.start
		}
		if s.Next(from).IsZero() {
			add("trigger.cron_schedule.cron", "%q never fires", rr.Trigger.CronSchedule.Cron)
		} else if s.nextInBounds(from.Add(-time.Nanosecond)).IsZero() {
			add("trigger.cron_schedule.end_time", "no slot of %q falls between start_time and end_time", rr.Trigger.CronSchedule.Cron)
		}
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}
