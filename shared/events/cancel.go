package events

import (
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// TypeRunCancel asks the function that dispatched a run to stop it on its backend. The
// submit function owns it (a :terminate request); the compile function consumes it.
const TypeRunCancel = "dev.pipefn.run.cancel.v1"

// RunCancel asks for a run attempt to be stopped.
type RunCancel struct {
	RunID   string `json:"run_id"`
	Team    string `json:"team"`
	Attempt int    `json:"attempt"`
}

// NewRunCancel builds a run.cancel event; its id is stable per run attempt, so a repeated
// :terminate is handled once.
func NewRunCancel(source string, at time.Time, d RunCancel) (cloudevents.Event, error) {
	return newEvent(TypeRunCancel, source, d.Team, d.RunID,
		"cancel:"+d.RunID+":"+strconv.Itoa(d.Attempt), at, d)
}
