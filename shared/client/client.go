// Package client is a Go client of pipefn's REST API (KFP v2beta1 shaped). The CLI, the
// end-to-end tests and anyone scripting pipefn from Go use it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// Client talks to one pipefn server.
type Client struct {
	Base  string // e.g. http://127.0.0.1:8080
	Token string // bearer token; empty when the server needs none
	HTTP  *http.Client
}

// New returns a client of the server at base.
func New(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: http.DefaultClient}
}

// Error is an error answer of the server.
type Error struct {
	HTTPStatus int
	Code       int    `json:"code"`
	Message    string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.HTTPStatus)
}

func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &Error{HTTPStatus: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = w.Write(data)
		return err
	}
	return json.Unmarshal(data, out)
}

func (c *Client) jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// UploadPipeline uploads IR as a new pipeline named name (with its first version).
func (c *Client) UploadPipeline(ctx context.Context, name, description string, ir []byte) (*api.Pipeline, error) {
	q := url.Values{"name": {name}}
	if description != "" {
		q.Set("description", description)
	}
	var p api.Pipeline
	err := c.upload(ctx, "/apis/v2beta1/pipelines/upload?"+q.Encode(), name, ir, &p)
	return &p, err
}

// UploadVersion uploads IR as a new version of pipeline pipelineID.
func (c *Client) UploadVersion(ctx context.Context, pipelineID, name string, ir []byte) (*api.PipelineVersion, error) {
	q := url.Values{"pipelineid": {pipelineID}, "name": {name}}
	var v api.PipelineVersion
	err := c.upload(ctx, "/apis/v2beta1/pipelines/upload_version?"+q.Encode(), name, ir, &v)
	return &v, err
}

func (c *Client) upload(ctx context.Context, path, filename string, ir []byte, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("uploadfile", filename+".yaml")
	if err != nil {
		return err
	}
	if _, err := fw.Write(ir); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	h := http.Header{"Content-Type": {mw.FormDataContentType()}}
	return c.do(ctx, http.MethodPost, path, h, &buf, out)
}

// ListPipelinesResponse is KFP's list answer.
type ListPipelinesResponse struct {
	Pipelines     []api.Pipeline `json:"pipelines"`
	TotalSize     int            `json:"total_size"`
	NextPageToken string         `json:"next_page_token"`
}

// ListPipelines lists the team's pipelines.
func (c *Client) ListPipelines(ctx context.Context, pageSize int, pageToken string) (*ListPipelinesResponse, error) {
	var out ListPipelinesResponse
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/pipelines?"+pageQuery(pageSize, pageToken).Encode(), nil, nil, &out)
	return &out, err
}

// GetPipeline returns one pipeline.
func (c *Client) GetPipeline(ctx context.Context, id string) (*api.Pipeline, error) {
	var p api.Pipeline
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/pipelines/"+url.PathEscape(id), nil, nil, &p)
	return &p, err
}

// ListVersionsResponse is KFP's list answer.
type ListVersionsResponse struct {
	PipelineVersions []api.PipelineVersion `json:"pipeline_versions"`
	TotalSize        int                   `json:"total_size"`
	NextPageToken    string                `json:"next_page_token"`
}

// ListVersions lists a pipeline's versions, newest first.
func (c *Client) ListVersions(ctx context.Context, pipelineID string, pageSize int, pageToken string) (*ListVersionsResponse, error) {
	var out ListVersionsResponse
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/pipelines/"+url.PathEscape(pipelineID)+"/versions?"+pageQuery(pageSize, pageToken).Encode(), nil, nil, &out)
	return &out, err
}

// CreateRun creates a run. A non-empty idempotencyKey makes a retried create return the
// first run.
func (c *Client) CreateRun(ctx context.Context, run *api.Run, idempotencyKey string) (*api.Run, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var out api.Run
	err := c.do(ctx, http.MethodPost, "/apis/v2beta1/runs", h, c.jsonBody(run), &out)
	return &out, err
}

// GetRun returns a run with its task details.
func (c *Client) GetRun(ctx context.Context, id string) (*api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/runs/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

// ListRunsResponse is KFP's list answer.
type ListRunsResponse struct {
	Runs          []api.Run `json:"runs"`
	TotalSize     int       `json:"total_size"`
	NextPageToken string    `json:"next_page_token"`
}

// ListRunsOptions filter and page a run listing.
type ListRunsOptions struct {
	PageSize     int
	PageToken    string
	SortBy       string
	Filter       string // KFP's JSON filter
	ExperimentID string
}

// ListRuns lists runs.
func (c *Client) ListRuns(ctx context.Context, o ListRunsOptions) (*ListRunsResponse, error) {
	q := pageQuery(o.PageSize, o.PageToken)
	if o.SortBy != "" {
		q.Set("sort_by", o.SortBy)
	}
	if o.Filter != "" {
		q.Set("filter", o.Filter)
	}
	if o.ExperimentID != "" {
		q.Set("experiment_id", o.ExperimentID)
	}
	var out ListRunsResponse
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/runs?"+q.Encode(), nil, nil, &out)
	return &out, err
}

// TerminateRun asks a run to stop.
func (c *Client) TerminateRun(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/apis/v2beta1/runs/"+url.PathEscape(id)+":terminate", nil, nil, nil)
}

// RetryRun re-runs a failed or canceled run.
func (c *Client) RetryRun(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/apis/v2beta1/runs/"+url.PathEscape(id)+":retry", nil, nil, nil)
}

// ArchiveRun archives a run.
func (c *Client) ArchiveRun(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/apis/v2beta1/runs/"+url.PathEscape(id)+":archive", nil, nil, nil)
}

// CloneRequest overrides parts of the run being cloned.
type CloneRequest struct {
	DisplayName string         `json:"display_name,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

// CloneRun creates a new run from another run's pipeline and parameters, with overrides.
func (c *Client) CloneRun(ctx context.Context, id string, req CloneRequest) (*api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, "/apis/v2beta1/runs/"+url.PathEscape(id)+":clone", nil, c.jsonBody(req), &out)
	return &out, err
}

// RunLog writes the log of one task (node) of a run to w.
func (c *Client) RunLog(ctx context.Context, runID, node string, w io.Writer) error {
	return c.do(ctx, http.MethodGet, "/apis/v2beta1/runs/"+url.PathEscape(runID)+"/nodes/"+url.PathEscape(node)+"/log", nil, nil, w)
}

// CreateExperiment creates an experiment.
func (c *Client) CreateExperiment(ctx context.Context, name, description string) (*api.Experiment, error) {
	var out api.Experiment
	err := c.do(ctx, http.MethodPost, "/apis/v2beta1/experiments", nil, c.jsonBody(api.Experiment{DisplayName: name, Description: description}), &out)
	return &out, err
}

// ListExperimentsResponse is KFP's list answer.
type ListExperimentsResponse struct {
	Experiments   []api.Experiment `json:"experiments"`
	TotalSize     int              `json:"total_size"`
	NextPageToken string           `json:"next_page_token"`
}

// ListExperiments lists experiments.
func (c *Client) ListExperiments(ctx context.Context, pageSize int, pageToken string) (*ListExperimentsResponse, error) {
	var out ListExperimentsResponse
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/experiments?"+pageQuery(pageSize, pageToken).Encode(), nil, nil, &out)
	return &out, err
}

// Watch streams a run's updates (server-sent events) and calls fn with each new state of
// the run until fn returns false, the run ends, or ctx is done. A stream the server ends
// before the run does (a replica draining, a watcher that fell behind) is resumed from
// the last event seen (Last-Event-ID), so no update is lost; Watch gives up after
// maxResumes resumptions in a row that brought nothing new.
func (c *Client) Watch(ctx context.Context, runID string, fn func(*api.Run) bool) error {
	lastID := ""
	idle := 0
	for {
		progressed, done, err := c.watchOnce(ctx, runID, &lastID, fn)
		if err != nil || done {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if progressed {
			idle = 0
		} else if idle++; idle > maxResumes {
			return fmt.Errorf("watch run %s: the stream ended %d times without news", runID, idle)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(resumeDelay * time.Duration(idle+1)):
		}
	}
}

// Resumption of a watch stream the server ended early.
const (
	maxResumes  = 5
	resumeDelay = 200 * time.Millisecond
)

// watchOnce reads one event stream. progressed says an event arrived; done that the
// watch is over (the run ended or fn said stop).
func (c *Client) watchOnce(ctx context.Context, runID string, lastID *string, fn func(*api.Run) bool) (progressed, done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/apis/v2beta1/runs/"+url.PathEscape(runID)+"/events", nil)
	if err != nil {
		return false, true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false, true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{HTTPStatus: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return false, true, e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data strings.Builder
	id := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var r api.Run
			if err := json.Unmarshal([]byte(data.String()), &r); err != nil {
				return progressed, true, fmt.Errorf("watch: bad event: %w", err)
			}
			data.Reset()
			if id != "" {
				*lastID, progressed = id, true
			}
			id = ""
			if !fn(&r) || api.Terminal(r.State) {
				return progressed, true, nil
			}
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		// A broken connection is resumed like an ended stream.
		return progressed, false, nil
	}
	return progressed, ctx.Err() != nil, ctx.Err()
}

func pageQuery(size int, token string) url.Values {
	q := url.Values{}
	if size > 0 {
		q.Set("page_size", strconv.Itoa(size))
	}
	if token != "" {
		q.Set("page_token", token)
	}
	return q
}
