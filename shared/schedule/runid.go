package schedule

import (
	"crypto/sha1"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SlotRunID is the run id of schedule scheduleID's run for slot: a name-based UUID
// (version 5 layout) of the schedule id and the slot's Unix nanoseconds. Every replica,
// retry and duplicated tick derives the same id for the same slot, which is what makes
// the claim in Redis and the submit function's idempotency key agree.
func SlotRunID(scheduleID string, slot time.Time) string {
	h := sha1.Sum([]byte("pipefn.schedule\x00" + scheduleID + "\x00" + strconv.FormatInt(slot.UnixNano(), 10)))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// DefaultTimeFormat is KFP's format for [[ScheduledTime]] and [[CurrentTime]].
const DefaultTimeFormat = "20060102150405"

// SubstituteParams returns a copy of params in which string values have KFP's macros
// replaced: [[ScheduledTime]] and [[CurrentTime]] (optionally with a Go layout,
// [[ScheduledTime.2006-01-02]]) and [[Index]], the 1-based ordinal of the run among the
// schedule's runs. Times are written in loc, the schedule's time zone (UTC by default,
// as in KFP), so a daily run at midnight in Europe/Berlin names its own date.
func SubstituteParams(params map[string]any, scheduled, current time.Time, index int64, loc *time.Location) map[string]any {
	if params == nil {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	out := make(map[string]any, len(params))
	for k, v := range params {
		if s, ok := v.(string); ok {
			v = substitute(s, scheduled.In(loc), current.In(loc), index)
		}
		out[k] = v
	}
	return out
}

func substitute(s string, scheduled, current time.Time, index int64) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "[[")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], "]]")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		macro := s[i+2 : i+j]
		b.WriteString(s[:i])
		if r, ok := expand(macro, scheduled, current, index); ok {
			b.WriteString(r)
		} else {
			b.WriteString(s[i : i+j+2]) // unknown macros are left as written
		}
		s = s[i+j+2:]
	}
}

func expand(macro string, scheduled, current time.Time, index int64) (string, bool) {
	name, layout, hasLayout := strings.Cut(macro, ".")
	if !hasLayout || layout == "" {
		layout = DefaultTimeFormat
	}
	switch name {
	case "ScheduledTime":
		return scheduled.Format(layout), true
	case "CurrentTime":
		return current.Format(layout), true
	case "Index":
		if hasLayout {
			return "", false
		}
		return strconv.FormatInt(index, 10), true
	}
	return "", false
}
