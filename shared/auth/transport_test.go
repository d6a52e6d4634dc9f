package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearerTransport(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	for _, tok := range []string{"pf_abc", ""} {
		c := &http.Client{Transport: BearerTransport(tok, nil)}
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("Authorization") != "" {
			t.Error("the caller's request was changed")
		}
	}
	if len(got) != 2 || got[0] != "Bearer pf_abc" || got[1] != "" {
		t.Errorf("Authorization headers sent: %q", got)
	}
}
