package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
)

// CondResult is the result name written by `launcher cond`.
const CondResult = "ok"

// ParamResult is the engine result name of output parameter name ("p-<name>").
func ParamResult(name string) string { return "p-" + sanitize(name) }

// ArtifactResult is the engine result name of output artifact name ("a-<name>").
func ArtifactResult(name string) string { return "a-" + sanitize(name) }

// sanitize maps name onto [A-Za-z0-9][-A-Za-z0-9_]*[A-Za-z0-9], which satisfies
// both Tekton's result-name rule and Argo's parameter-name rule (Argo does not
// allow dots, so neither do we). A name that had to change gets a short hash
// of the original appended so two different names never share a result.
func sanitize(name string) string {
	var b strings.Builder
	changed := false
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	s := b.String()
	if s == "" || !isAlnum(s[len(s)-1]) {
		changed = true
	}
	if !changed {
		return s
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(s, "-_") + "-" + hex.EncodeToString(sum[:4])
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// WriteResults writes the outputs to dir: p-<name> with the encoded value of
// each output parameter and a-<name> with the artifact URI (a JSON array of
// URIs for an artifact list). types gives each parameter's declared type.
func WriteResults(dir string, out Outputs, types map[string]ParameterType) error {
	return resultWriter{}.results(dir, out, types)
}

// resultWriter writes results plain or, for a matrixed task, in envelopes.
type resultWriter struct {
	envelope bool
	path     []int
}

// WriteResults is the package's WriteResults for the bound task: in
// envelopes naming the iteration when the task is matrixed.
func (b Bound) WriteResults(dir string, out Outputs, types map[string]ParameterType) error {
	return b.writer().results(dir, out, types)
}

// WriteSkippedResults is WriteSkippedResults for the bound task.
func (b Bound) WriteSkippedResults(dir string, spec *pipelinespec.ComponentSpec) error {
	return b.writer().skipped(dir, spec)
}

// WriteCondResult is WriteCondResult for the bound task.
func (b Bound) WriteCondResult(dir string, ok bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("launch: results dir %s: %w", dir, err)
	}
	return b.writer().write(dir, CondResult, fmt.Sprint(ok), false)
}

func (b Bound) writer() resultWriter { return resultWriter{envelope: b.Envelope, path: b.Path} }

func (w resultWriter) write(dir, name, value string, skipped bool) error {
	if w.envelope {
		value = EncodeEnvelope(w.path, value, skipped)
	}
	return writeResult(dir, name, value)
}

func (w resultWriter) results(dir string, out Outputs, types map[string]ParameterType) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("launch: results dir %s: %w", dir, err)
	}
	for name, v := range out.Params {
		t, ok := types[name]
		if !ok {
			t = pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED
		}
		if err := w.write(dir, ParamResult(name), EncodeParam(v, t), false); err != nil {
			return err
		}
	}
	for name, list := range out.Artifacts {
		if err := w.write(dir, ArtifactResult(name), encodeURIs(list, len(list) != 1), false); err != nil {
			return err
		}
	}
	return nil
}

// encodeURIs renders the URIs of list: one bare URI, or a JSON array.
func encodeURIs(list []*pipelinespec.RuntimeArtifact, asList bool) string {
	uris := make([]string, 0, len(list))
	for _, a := range list {
		uris = append(uris, a.GetUri())
	}
	if !asList && len(uris) == 1 {
		return uris[0]
	}
	b, _ := json.Marshal(uris)
	return string(b)
}

// WriteCondResult writes the `ok` result of a condition task.
func WriteCondResult(dir string, ok bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("launch: results dir %s: %w", dir, err)
	}
	return writeResult(dir, CondResult, fmt.Sprint(ok))
}

func writeResult(dir, name, value string) error {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("launch: write result %s: %w", path, err)
	}
	return nil
}

// WriteSkippedResults writes an empty result for every output of spec, for
// a task its guards skipped: engines expect every declared result, and
// consumers treat empty results of a skipped iteration as absent.
func WriteSkippedResults(dir string, spec *pipelinespec.ComponentSpec) error {
	return resultWriter{}.skipped(dir, spec)
}

func (w resultWriter) skipped(dir string, spec *pipelinespec.ComponentSpec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("launch: results dir %s: %w", dir, err)
	}
	for name := range spec.GetOutputDefinitions().GetParameters() {
		if err := w.write(dir, ParamResult(name), "", true); err != nil {
			return err
		}
	}
	for name := range spec.GetOutputDefinitions().GetArtifacts() {
		if err := w.write(dir, ArtifactResult(name), "", true); err != nil {
			return err
		}
	}
	return nil
}
