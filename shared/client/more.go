package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pipefn/pipefn/shared/api"
)

// Get reads any JSON resource of the API under /apis/v2beta1 into out.
func (c *Client) Get(ctx context.Context, path string, q url.Values, out any) error {
	p := "/apis/v2beta1" + path
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return c.do(ctx, http.MethodGet, p, nil, nil, out)
}

// CreateRecurringRun creates a schedule.
func (c *Client) CreateRecurringRun(ctx context.Context, rr *api.RecurringRun) (*api.RecurringRun, error) {
	var out api.RecurringRun
	err := c.do(ctx, http.MethodPost, "/apis/v2beta1/recurringruns", nil, c.jsonBody(rr), &out)
	return &out, err
}

// ListRecurringRunsResponse is KFP's list answer.
type ListRecurringRunsResponse struct {
	RecurringRuns []api.RecurringRun `json:"recurringRuns"`
	TotalSize     int                `json:"total_size"`
	NextPageToken string             `json:"next_page_token"`
}

// ListRecurringRuns lists schedules.
func (c *Client) ListRecurringRuns(ctx context.Context, pageSize int, pageToken string) (*ListRecurringRunsResponse, error) {
	var out ListRecurringRunsResponse
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/recurringruns?"+pageQuery(pageSize, pageToken).Encode(), nil, nil, &out)
	return &out, err
}

// GetRecurringRun returns one schedule.
func (c *Client) GetRecurringRun(ctx context.Context, id string) (*api.RecurringRun, error) {
	var out api.RecurringRun
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/recurringruns/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

// DeleteRecurringRun deletes a schedule.
func (c *Client) DeleteRecurringRun(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/apis/v2beta1/recurringruns/"+url.PathEscape(id), nil, nil, nil)
}

// SetRecurringRunEnabled enables or disables a schedule.
func (c *Client) SetRecurringRunEnabled(ctx context.Context, id string, enabled bool) error {
	verb := ":disable"
	if enabled {
		verb = ":enable"
	}
	return c.do(ctx, http.MethodPost, "/apis/v2beta1/recurringruns/"+url.PathEscape(id)+verb, nil, nil, nil)
}

// NextFireTimes is pipefn's answer to :next.
type NextFireTimes struct {
	RecurringRunID string   `json:"recurring_run_id"`
	TimeZone       string   `json:"time_zone,omitempty"`
	NextFireTimes  []string `json:"next_fire_times"`
}

// NextFireTimes lists a schedule's coming fire times.
func (c *Client) NextFireTimes(ctx context.Context, id string, count int) (*NextFireTimes, error) {
	var out NextFireTimes
	q := url.Values{"count": {strconv.Itoa(count)}}
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/recurringruns/"+url.PathEscape(id)+":next?"+q.Encode(), nil, nil, &out)
	return &out, err
}
