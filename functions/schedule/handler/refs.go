package handler

import (
	"context"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/schedule"
)

// checkRefs refuses, at create time, a recurring run whose every firing would be refused
// by the submit function: an unknown experiment or pipeline version, an inline spec that
// is not valid IR, or runtime parameters that do not bind (checked with the macros
// substituted, as they will be at fire time). The trigger itself is checked by the store
// (schedule.Validate).
func (h *Handler) checkRefs(ctx context.Context, team string, rr api.RecurringRun) error {
	if rr.ExperimentID != "" {
		e, err := h.Store.GetExperiment(ctx, team, rr.ExperimentID)
		if err != nil {
			return err
		}
		if e.StorageState == api.StorageArchived {
			return api.Errorf(api.KindFailedPrecondition, "experiment_id: experiment %s is archived", e.ExperimentID)
		}
	}
	var data []byte
	hasSpec := len(rr.PipelineSpec) > 0 && string(rr.PipelineSpec) != "null"
	ref := rr.PipelineVersionReference
	switch {
	case hasSpec && ref != nil && (ref.PipelineID != "" || ref.PipelineVersionID != ""):
		return nil // schedule.Validate reports the conflict with its path
	case hasSpec:
		data = api.IR(rr.PipelineSpec)
	case ref != nil && ref.PipelineVersionID != "":
		if _, err := h.Store.GetPipelineVersion(ctx, team, ref.PipelineID, ref.PipelineVersionID); err != nil {
			return err
		}
		b, err := h.Store.GetPipelineVersionIR(ctx, team, ref.PipelineVersionID)
		if err != nil {
			return err
		}
		data = b
	case ref != nil && ref.PipelineID != "":
		// Each firing runs the pipeline's latest version; the pipeline must exist now.
		v, err := h.Store.LatestPipelineVersion(ctx, team, ref.PipelineID)
		if err != nil {
			return err
		}
		b, err := h.Store.GetPipelineVersionIR(ctx, team, v.PipelineVersionID)
		if err != nil {
			return err
		}
		data = b
	default:
		return nil // schedule.Validate reports the missing pipeline
	}
	p, err := ir.Load(data)
	if err != nil {
		return api.Errorf(api.KindInvalid, "pipeline_spec: %v", err)
	}
	var params map[string]any
	if rr.RuntimeConfig != nil {
		loc, err := schedule.LoadZone(rr.TimeZone)
		if err != nil {
			return nil // schedule.Validate reports it
		}
		now := h.now()
		params = schedule.SubstituteParams(rr.RuntimeConfig.Parameters, now, now, 1, loc)
	}
	if _, err := p.BindParameters(params); err != nil {
		return api.Errorf(api.KindInvalid, "runtime_config: %v", err)
	}
	return nil
}
