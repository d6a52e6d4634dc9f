package handler

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The parsers of every trigger take bytes from the internet (after the signature check,
// but a signed body can still be hostile). None may panic, and what they accept must be
// self-consistent.

func FuzzParseGitHub(f *testing.F) {
	for _, name := range []string{"testdata/github-push.json", "testdata/github-pull_request.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("push", b)
		f.Add("pull_request", b)
	}
	f.Add("push", []byte(`{"repository":{"full_name":"a/b"},"ref":"r","after":"0000"}`))
	f.Add("pull_request", []byte(`{"repository":{"full_name":"a/b"},"pull_request":null}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		g, err := ParseGitHub(event, body)
		if err != nil {
			return
		}
		if g.Repository == "" || (g.Ignore == "" && (g.Ref == "" || g.SHA == "")) {
			t.Fatalf("accepted an event without repository, ref or sha: %+v", g)
		}
		doc := g.Doc()
		if v, ok := Lookup(doc, "repository"); !ok || v != g.Repository {
			t.Fatalf("document repository %v, want %q", v, g.Repository)
		}
	})
}

func FuzzParseGeneric(f *testing.F) {
	f.Add([]byte(`{"image":{"tag":"v1"}}`), "image.tag")
	f.Add([]byte(`{"a":[1,{"b":null}]}`), "a.1.b")
	f.Add([]byte(`null`), "x")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		doc, err := ParseGeneric(body)
		if err != nil {
			return
		}
		if doc == nil {
			t.Fatal("accepted a body that is not an object")
		}
		if v, ok := Lookup(doc, path); ok && v == nil {
			t.Fatalf("Lookup(%q) found nil", path)
		}
	})
}

func FuzzParseChatCommand(f *testing.F) {
	for _, s := range []string{
		"text=run+hello+count%3D2&user_name=ada&response_url=https%3A%2F%2Fhooks.slack.com%2Fx",
		"text=status+r1", "text=list", "text=cancel+r1", "text=schedules", "text=", "text=run+a+%3Dx", "%zz",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseChatCommand(body)
		if err != nil {
			return
		}
		switch c.Verb {
		case "run":
			if c.Target == "" {
				t.Fatal("run without a pipeline")
			}
			for k := range c.Params {
				if k == "" || strings.ContainsAny(k, " \t\n") {
					t.Fatalf("parameter name %q", k)
				}
			}
		case "status", "cancel":
			if c.Target == "" {
				t.Fatalf("%s without a run", c.Verb)
			}
		case "list", "schedules", "help":
		default:
			t.Fatalf("accepted verb %q", c.Verb)
		}
	})
}

// FuzzSignatures: no header value makes a verifier panic or accept a wrong signature.
func FuzzSignatures(f *testing.F) {
	f.Add("sha256=00", "1700000000", "v1=00", []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("sha256=zz", "-9223372036854775808", "v0=", []byte("x"))
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, gh, ts, sig string, body []byte) {
		const secret = "fuzz-secret-0123456789"
		if VerifyGitHub(secret, gh, body) && gh != "sha256="+SignHMAC(secret, body) && !strings.EqualFold(gh, "sha256="+SignHMAC(secret, body)) {
			t.Fatalf("GitHub signature %q accepted", gh)
		}
		if VerifyGeneric(secret, ts, sig, body, now, 5*time.Minute) && !strings.EqualFold(sig, "v1="+SignHMAC(secret, []byte(ts), []byte("."), body)) {
			t.Fatalf("generic signature %q accepted", sig)
		}
		if VerifySlack(secret, ts, sig, body, now, 5*time.Minute) && !strings.EqualFold(sig, "v0="+SignHMAC(secret, []byte("v0:"+ts+":"), body)) {
			t.Fatalf("slack signature %q accepted", sig)
		}
	})
}
