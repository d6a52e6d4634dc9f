package handler

import (
	"net/http"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/rest"
)

func (h *Handler) createExperiment(w http.ResponseWriter, r *http.Request, team string) error {
	var in api.Experiment
	if err := rest.DecodeJSON(w, r, 0, &in); err != nil {
		return err
	}
	if in.DisplayName == "" {
		return api.Errorf(api.KindInvalid, "experiment: display_name is required")
	}
	e, err := h.Store.CreateExperiment(r.Context(), team, api.Experiment{DisplayName: in.DisplayName, Description: in.Description, Namespace: team})
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, e)
	return nil
}

func (h *Handler) listExperiments(w http.ResponseWriter, r *http.Request, team string) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	items, next, err := h.Store.ListExperiments(r.Context(), team, opts, r.URL.Query().Get("storage_state"))
	if err != nil {
		return err
	}
	if items == nil {
		items = []api.Experiment{}
	}
	rest.WriteJSON(w, http.StatusOK, rest.ListBody("experiments", items, len(items), next))
	return nil
}

func (h *Handler) getExperiment(w http.ResponseWriter, r *http.Request, team string) error {
	e, err := h.Store.GetExperiment(r.Context(), team, r.PathValue("id"))
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, e)
	return nil
}

// experimentAction serves POST /experiments/{id}:archive and :unarchive.
func (h *Handler) experimentAction(w http.ResponseWriter, r *http.Request, team string) error {
	id, verb := rest.SplitAction(r.PathValue("action"))
	var err error
	switch verb {
	case "archive":
		err = h.Store.ArchiveExperiment(r.Context(), team, id)
	case "unarchive":
		err = h.Store.UnarchiveExperiment(r.Context(), team, id)
	default:
		return api.Errorf(api.KindNotFound, "unknown experiment method %q (want archive or unarchive)", verb)
	}
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
