package handler

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/rest"
)

const defaultMaxUpload = 32 << 20

// readUpload reads the multipart "uploadfile" of a KFP upload, bounded in size.
func (h *Handler) readUpload(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	limit := h.MaxUpload
	if limit <= 0 {
		limit = defaultMaxUpload
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+1<<20)
	if err := r.ParseMultipartForm(limit); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", api.Errorf(api.KindTooLarge, "upload is larger than %d bytes", limit)
		}
		return nil, "", api.Errorf(api.KindInvalid, "upload: want a multipart form with the IR in field \"uploadfile\": %v", err)
	}
	defer r.MultipartForm.RemoveAll()
	f, fh, err := r.FormFile("uploadfile")
	if err != nil {
		return nil, "", api.Errorf(api.KindInvalid, "upload: no file in form field \"uploadfile\"")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, "", api.Errorf(api.KindInvalid, "upload: read file: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, "", api.Errorf(api.KindTooLarge, "upload is larger than %d bytes", limit)
	}
	name := fh.Filename
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	return data, name, nil
}

// loadIR validates IR in full; its problems, each with its path, make one invalid error.
func loadIR(data []byte) (*ir.Pipeline, error) {
	p, err := ir.Load(data)
	if err != nil {
		return nil, api.Errorf(api.KindInvalid, "invalid pipeline: %v", err)
	}
	return p, nil
}

// specOf is the version's pipeline_spec as KFP shows it: the first document as JSON.
func specOf(data []byte) json.RawMessage {
	b, err := ir.SpecJSON(data)
	if err != nil {
		return nil
	}
	return b
}

func (h *Handler) uploadPipeline(w http.ResponseWriter, r *http.Request, team string) error {
	data, fileName, err := h.readUpload(w, r)
	if err != nil {
		return err
	}
	p, err := loadIR(data)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name := firstNonEmpty(q.Get("name"), q.Get("display_name"), p.Spec.GetPipelineInfo().GetName(), fileName)
	pl, err := h.Store.CreatePipeline(r.Context(), team, api.Pipeline{
		DisplayName: firstNonEmpty(q.Get("display_name"), name), Name: name, Description: q.Get("description"),
		Namespace: team,
	})
	if err != nil {
		return err
	}
	if _, err := h.Store.CreatePipelineVersion(r.Context(), team, api.PipelineVersion{
		PipelineID: pl.PipelineID, DisplayName: name, Name: name, Description: q.Get("description"), PipelineSpec: specOf(data),
	}, data); err != nil {
		// Nothing half-written: the pipeline goes if its first version cannot be stored.
		_ = h.Store.DeletePipeline(r.Context(), team, pl.PipelineID, true)
		return err
	}
	rest.WriteJSON(w, http.StatusOK, pl)
	return nil
}

func (h *Handler) uploadVersion(w http.ResponseWriter, r *http.Request, team string) error {
	q := r.URL.Query()
	pid := firstNonEmpty(q.Get("pipelineid"), q.Get("pipeline_id"))
	if pid == "" {
		return api.Errorf(api.KindInvalid, "upload_version: query parameter pipelineid is required")
	}
	if _, err := h.Store.GetPipeline(r.Context(), team, pid); err != nil {
		return err
	}
	data, fileName, err := h.readUpload(w, r)
	if err != nil {
		return err
	}
	if _, err := loadIR(data); err != nil {
		return err
	}
	name := firstNonEmpty(q.Get("name"), q.Get("display_name"), fileName)
	v, err := h.Store.CreatePipelineVersion(r.Context(), team, api.PipelineVersion{
		PipelineID: pid, DisplayName: firstNonEmpty(q.Get("display_name"), name), Name: name,
		Description: q.Get("description"), PipelineSpec: specOf(data),
	}, data)
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h *Handler) createPipeline(w http.ResponseWriter, r *http.Request, team string) error {
	var in api.Pipeline
	if err := rest.DecodeJSON(w, r, 0, &in); err != nil {
		return err
	}
	if in.DisplayName == "" && in.Name == "" {
		return api.Errorf(api.KindInvalid, "pipeline: display_name is required")
	}
	pl, err := h.Store.CreatePipeline(r.Context(), team, api.Pipeline{
		DisplayName: firstNonEmpty(in.DisplayName, in.Name), Name: in.Name, Description: in.Description, Namespace: team,
	})
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, pl)
	return nil
}

// createPipelineAndVersion is KFP's CreatePipelineAndVersion: {pipeline, pipeline_version}.
func (h *Handler) createPipelineAndVersion(w http.ResponseWriter, r *http.Request, team string) error {
	var in struct {
		Pipeline        api.Pipeline        `json:"pipeline"`
		PipelineVersion api.PipelineVersion `json:"pipeline_version"`
	}
	if err := rest.DecodeJSON(w, r, defaultMaxUpload, &in); err != nil {
		return err
	}
	data, p, err := versionIR(in.PipelineVersion)
	if err != nil {
		return err
	}
	name := firstNonEmpty(in.Pipeline.Name, in.Pipeline.DisplayName, p.Spec.GetPipelineInfo().GetName())
	pl, err := h.Store.CreatePipeline(r.Context(), team, api.Pipeline{
		DisplayName: firstNonEmpty(in.Pipeline.DisplayName, name), Name: name, Description: in.Pipeline.Description, Namespace: team,
	})
	if err != nil {
		return err
	}
	vname := firstNonEmpty(in.PipelineVersion.Name, in.PipelineVersion.DisplayName, name)
	if _, err := h.Store.CreatePipelineVersion(r.Context(), team, api.PipelineVersion{
		PipelineID: pl.PipelineID, DisplayName: firstNonEmpty(in.PipelineVersion.DisplayName, vname), Name: vname,
		Description: in.PipelineVersion.Description, PipelineSpec: specOf(data),
	}, data); err != nil {
		_ = h.Store.DeletePipeline(r.Context(), team, pl.PipelineID, true)
		return err
	}
	rest.WriteJSON(w, http.StatusOK, pl)
	return nil
}

// versionIR takes the IR of a JSON-created version: its inline pipeline_spec. Fetching a
// package_url would make the server fetch arbitrary addresses; it is refused.
func versionIR(v api.PipelineVersion) ([]byte, *ir.Pipeline, error) {
	if len(v.PipelineSpec) == 0 || string(v.PipelineSpec) == "null" {
		if v.PackageURL != nil && v.PackageURL.PipelineURL != "" {
			return nil, nil, api.Errorf(api.KindInvalid, "pipeline_version.package_url: pipefn does not fetch packages by URL; upload the file or send pipeline_spec inline")
		}
		return nil, nil, api.Errorf(api.KindInvalid, "pipeline_version.pipeline_spec is required")
	}
	data := api.IR(v.PipelineSpec)
	p, err := loadIR(data)
	return data, p, err
}

func (h *Handler) createVersion(w http.ResponseWriter, r *http.Request, team string) error {
	pid := r.PathValue("id")
	var in api.PipelineVersion
	if err := rest.DecodeJSON(w, r, defaultMaxUpload, &in); err != nil {
		return err
	}
	if in.PipelineID != "" && in.PipelineID != pid {
		return api.Errorf(api.KindInvalid, "pipeline_version.pipeline_id %q does not match the path's %q", in.PipelineID, pid)
	}
	if _, err := h.Store.GetPipeline(r.Context(), team, pid); err != nil {
		return err
	}
	data, _, err := versionIR(in)
	if err != nil {
		return err
	}
	name := firstNonEmpty(in.Name, in.DisplayName)
	if name == "" {
		return api.Errorf(api.KindInvalid, "pipeline_version.display_name is required")
	}
	v, err := h.Store.CreatePipelineVersion(r.Context(), team, api.PipelineVersion{
		PipelineID: pid, DisplayName: firstNonEmpty(in.DisplayName, name), Name: name, Description: in.Description,
		CodeSourceURL: in.CodeSourceURL, PipelineSpec: specOf(data),
	}, data)
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h *Handler) listPipelines(w http.ResponseWriter, r *http.Request, team string) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	items, next, err := h.Store.ListPipelines(r.Context(), team, opts)
	if err != nil {
		return err
	}
	if items == nil {
		items = []api.Pipeline{}
	}
	rest.WriteJSON(w, http.StatusOK, rest.ListBody("pipelines", items, len(items), next))
	return nil
}

func (h *Handler) getPipeline(w http.ResponseWriter, r *http.Request, team string) error {
	p, err := h.Store.GetPipeline(r.Context(), team, r.PathValue("id"))
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) deletePipeline(w http.ResponseWriter, r *http.Request, team string) error {
	cascade := r.URL.Query().Get("cascade") == "true"
	if err := h.Store.DeletePipeline(r.Context(), team, r.PathValue("id"), cascade); err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (h *Handler) listVersions(w http.ResponseWriter, r *http.Request, team string) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	items, next, err := h.Store.ListPipelineVersions(r.Context(), team, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	if items == nil {
		items = []api.PipelineVersion{}
	}
	rest.WriteJSON(w, http.StatusOK, rest.ListBody("pipeline_versions", items, len(items), next))
	return nil
}

func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request, team string) error {
	v, err := h.Store.GetPipelineVersion(r.Context(), team, r.PathValue("id"), r.PathValue("vid"))
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h *Handler) deleteVersion(w http.ResponseWriter, r *http.Request, team string) error {
	if err := h.Store.DeletePipelineVersion(r.Context(), team, r.PathValue("id"), r.PathValue("vid")); err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
