package handler

import (
	"context"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/k8s"
)

// Knative ApiServerSource event types (Resource mode: the data is the whole object).
const (
	APIServerResourcePrefix = "dev.knative.apiserver.resource."
	TypeAPIServerAdd        = APIServerResourcePrefix + "add"
	TypeAPIServerUpdate     = APIServerResourcePrefix + "update"
	TypeAPIServerDelete     = APIServerResourcePrefix + "delete"
)

// APIServerEvent applies a Knative ApiServerSource event about an Argo Workflow (or a
// Tekton object, when the source watches those too). A delete says nothing about the
// run's outcome (pruning deletes finished objects), so it is ignored; a run whose object
// vanished while active is left to the resync.
func (h *Handler) APIServerEvent(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	if e.Type() == TypeAPIServerDelete {
		return nil, nil
	}
	st, ok, err := k8s.FromAPIServerEvent(e.Data())
	return h.applyBackendEvent(ctx, e, st, ok, err)
}
