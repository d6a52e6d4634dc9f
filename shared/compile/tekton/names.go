package tekton

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/pipefn/pipefn/shared/compile"
)

// maxName is the longest Kubernetes label value / DNS-1123 label, which is
// what Tekton requires of pipeline task names.
const maxName = 63

// namer hands out flattened pipeline task names: the DAG path joined with
// "-", lowercased to DNS-1123, and, when too long or already taken, cut and
// given a short hash of the full path so that names stay unique and the same
// for the same IR.
type namer struct {
	used map[string]string // name -> the path key that owns it
}

func newNamer() *namer { return &namer{used: map[string]string{}} }

// name returns the task name for path (the IR task names from the root)
// plus an optional suffix such as "cond".
func (n *namer) name(path []string, suffix string) string {
	parts := append([]string(nil), path...)
	// A suffix is kept apart in the key: task "items" in loop "l" and the
	// items task of loop "l" must not share a name.
	key := strings.Join(parts, "\x00") + "\x01" + suffix
	if suffix != "" {
		parts = append(parts, suffix)
	}
	base := compile.DNSLabel(strings.Join(parts, "-"))
	if base == "" {
		base = "task"
	}
	if owner, taken := n.used[base]; (!taken || owner == key) && len(base) <= maxName {
		n.used[base] = key
		return base
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])[:8]
	cut := base
	if len(cut) > maxName-9 {
		cut = strings.TrimRight(cut[:maxName-9], "-")
	}
	name := cut + "-" + h
	n.used[name] = key
	return name
}

// objectName is the PipelineRun name for a run id: "pf-" + the id in
// DNS-1123 form, trimmed to 63 characters.
func objectName(runID string) string {
	n := "pf-" + compile.DNSLabel(runID)
	if len(n) > maxName {
		n = strings.TrimRight(n[:maxName], "-")
	}
	return strings.TrimRight(n, "-")
}
