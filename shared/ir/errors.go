package ir

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one defect found in a pipeline, located by a path such as
// root.dag.tasks['train'].inputs.parameters['lr'].
type Problem struct {
	Path    string
	Message string
}

// String renders the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError carries every problem found in one pass, so that a user
// fixes a pipeline in one round trip instead of one error at a time.
type ValidationError struct {
	Problems []Problem
}

// Error lists every problem, one per line after the first.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid pipeline: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid pipeline (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems accumulates Problems; the zero value is ready to use.
type problems struct {
	list []Problem
}

func (ps *problems) add(path, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was found, else a *ValidationError whose
// problems are sorted by path so output is stable across map iteration.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Path < ps.list[j].Path })
	return &ValidationError{Problems: ps.list}
}

// pathKey renders a map key in a path: tasks['train'].
func pathKey(base, field, key string) string {
	return join(base, field) + "['" + key + "']"
}

// join appends a field name to a path.
func join(base, field string) string {
	if base == "" {
		return field
	}
	return base + "." + field
}
