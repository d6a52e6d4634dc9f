package handler

import (
	"context"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/k8s"
)

// TektonEvent applies one of Tekton's own CloudEvents (dev.tekton.event.pipelinerun.*,
// dev.tekton.event.taskrun.*): the object in its data is the truth of that moment, run
// through the same forward-only path as every report. Events of objects pipefn did not
// create are ignored.
func (h *Handler) TektonEvent(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	st, ok, err := k8s.FromTektonEvent(e.Data())
	return h.applyBackendEvent(ctx, e, st, ok, err)
}
