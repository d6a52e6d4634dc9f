package argo

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Argo's rule for template and DAG task names is [a-zA-Z0-9][-a-zA-Z0-9]*,
// at most 128 characters; DAG task names must not start with a digit when
// `depends` is used (we always use it). Kubernetes object names are DNS-1123
// labels of at most 63 characters.
const (
	maxFieldName  = 128
	maxObjectName = 63
)

// fieldName maps s onto Argo's field-name rule. A name that had to change, or
// that is too long, gets a short hash of the original so that two different
// IR names never collide after sanitising.
func fieldName(s string, max int) string {
	var b strings.Builder
	changed := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
			changed = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "t-" + out
		changed = true
	}
	if !changed && len(out) <= max {
		return out
	}
	h := shortHash(s)
	if len(out) > max-len(h)-1 {
		out = strings.TrimRight(out[:max-len(h)-1], "-")
	}
	return strings.TrimRight(out, "-") + "-" + h
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// objectName is the Workflow name for a run: pf-<runID> as a DNS-1123 label.
func objectName(runID string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(runID) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := "pf-" + strings.Trim(b.String(), "-")
	if len(name) > maxObjectName {
		name = name[:maxObjectName]
	}
	return strings.TrimRight(name, "-")
}

// namer hands out unique names within one namespace (the workflow's
// templates, or one DAG's tasks). Callers ask in a deterministic order, so
// the same IR always yields the same names.
type namer struct {
	max  int
	used map[string]bool
}

func newNamer(max int) *namer { return &namer{max: max, used: map[string]bool{}} }

// name returns a unique sanitised name for s.
func (n *namer) name(s string) string {
	base := fieldName(s, n.max)
	out := base
	for i := 2; n.used[out]; i++ {
		out = fieldName(s+"#"+itoa(i), n.max)
	}
	n.used[out] = true
	return out
}

// reserve marks a name as taken (for names we build ourselves).
func (n *namer) reserve(s string) { n.used[s] = true }

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{digits[i%10]}, b...)
		i /= 10
	}
	return string(b)
}
