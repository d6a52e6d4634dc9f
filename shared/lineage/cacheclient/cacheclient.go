// Package cacheclient asks the lineage function's cache API for a previous execution to
// reuse: GET /apis/v2beta1/cache/{key}?max_age=. The launcher uses it inside task pods;
// in-process callers use state.Store.CacheLookupFunc instead.
package cacheclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pipefn/pipefn/shared/lineage"
)

// maxBody bounds the answer read: a cache hit is one execution and its outputs.
const maxBody = 8 << 20

// grpcNotFound is the code of a KFP-style {"code","message"} not-found status.
const grpcNotFound = 5

// Client calls the cache API of one lineage function.
type Client struct {
	base   string
	hc     *http.Client
	header http.Header
}

// New returns a client for the lineage function at baseURL (scheme and host, optionally a
// path prefix). hc may be nil (a client with a 10s timeout). header is sent with every
// request (e.g. Authorization); it may be nil.
func New(baseURL string, hc *http.Client, header http.Header) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cacheclient: base URL %q: want http(s)://host[:port][/prefix]", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, header: header.Clone()}, nil
}

// Lookup is a lineage.CacheLookupFunc over HTTP: the API's not-found answer is a miss, any
// other failure an error (the caller then runs the task rather than trusting a guess).
func (c *Client) Lookup(ctx context.Context, key string, maxAge time.Duration) (lineage.CacheHit, bool, error) {
	if !lineage.ValidCacheKey(key) {
		return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: key %q is not a cache key", key)
	}
	u := c.base + "/apis/v2beta1/cache/" + key
	if maxAge > 0 {
		secs := int64((maxAge + time.Second - 1) / time.Second)
		u += "?max_age=" + strconv.FormatInt(secs, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: %w", err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: GET %s: read answer: %w", u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var hit lineage.CacheHit
		if err := json.Unmarshal(body, &hit); err != nil {
			return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: GET %s: decode answer: %w", u, err)
		}
		return hit, true, nil
	}
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	decoded := json.Unmarshal(body, &st) == nil
	// A miss is the API's own NOT_FOUND status; a bare 404 means a wrong base URL, which
	// must not pass for a miss forever.
	if resp.StatusCode == http.StatusNotFound && decoded && st.Code == grpcNotFound {
		return lineage.CacheHit{}, false, nil
	}
	if decoded && st.Message != "" {
		return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: GET %s: %s (HTTP %d, code %d)", u, st.Message, resp.StatusCode, st.Code)
	}
	return lineage.CacheHit{}, false, fmt.Errorf("cacheclient: GET %s: HTTP %d", u, resp.StatusCode)
}

var _ lineage.CacheLookupFunc = (*Client)(nil).Lookup
