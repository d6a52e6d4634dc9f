package launch

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// This file is the one definition of the launcher's loop extension wire
// format (--extra-b64, --iteration, result envelopes, the items result).
// The Tekton compiler writes it with these types; the launcher reads it.
// Tekton cannot nest pipelines and hands a matrixed task's results on only
// as a whole array ordered by TaskRun name, so loops need more than the
// TaskConfig contract carries.

// Extra is the static loop extension of a task (--extra-b64: base64 JSON).
// The JSON field order is part of the compiled output (golden files), so
// fields are only ever appended.
type Extra struct {
	// IterationInputs maps an input bound to a loop item to the
	// parameterExpressionSelector applied to the item ("" = the whole item).
	IterationInputs map[string]string `json:"iterationInputs,omitempty"`
	// IterationLevels, in nested loops only, gives the level (0 =
	// outermost) whose item (Iteration.Items[level]) an iteration input
	// takes. An input without an entry takes the innermost item.
	IterationLevels map[string]int `json:"iterationLevels,omitempty"`
	// IterationArtifacts are iteration inputs that are artifacts: the item
	// is the artifact's URI (ParallelFor over artifacts).
	IterationArtifacts []string `json:"iterationArtifacts,omitempty"`
	// Levels (items subcommand only) describe the loop levels to expand;
	// the iterations are their product, outermost level first.
	Levels []Level `json:"levels,omitempty"`
	// ListInputs describes every --list-param / --list-artifact input.
	ListInputs map[string]ListInput `json:"listInputs,omitempty"`
	// ResultEnvelope (matrixed tasks): every result is written as a
	// compact JSON Envelope naming the iteration that produced it.
	ResultEnvelope bool `json:"resultEnvelope,omitempty"`
	// Guards name inputs holding condition results ("true"/"false"): a
	// --param, or a per-iteration --list-param in a loop body. Unless all
	// are "true" (for this iteration) the launcher skips the user command,
	// writes skipped results (cond writes ok=false) and exits 0.
	Guards []string `json:"guards,omitempty"`
	// OneOf maps an input bound to dsl.OneOf to its candidates in order:
	// the launcher binds the input to the first candidate whose guards are
	// all "true"; the candidates' own inputs are not passed to the user.
	OneOf map[string][]OneOfCandidate `json:"oneOf,omitempty"`
	// Selectors maps an input to the parameterExpressionSelector to apply to
	// the value it receives (outside loop items).
	Selectors map[string]string `json:"selectors,omitempty"`
	// FinalStatus maps a PipelineTaskFinalStatus input that receives engine
	// statuses ($(tasks.T.status), comma-joined, one per Leaves entry) to
	// what the engine cannot tell: the IR task it reports on and the run,
	// so the launcher builds KFP's full status (pipelineTaskName,
	// pipelineJobResourceName, error naming the failed tasks).
	FinalStatus map[string]FinalStatusSource `json:"finalStatus,omitempty"`
}

// FinalStatusSource describes a PipelineTaskFinalStatus input.
type FinalStatusSource struct {
	Task   string   `json:"task"`             // the IR task (or DAG) watched
	Run    string   `json:"run"`              // pipelineJobResourceName
	Leaves []string `json:"leaves,omitempty"` // the engine tasks whose statuses arrive, in order
}

// Empty reports whether e carries nothing (no --extra-b64 is needed).
func (e Extra) Empty() bool {
	return len(e.IterationInputs) == 0 && len(e.ListInputs) == 0 && len(e.Guards) == 0 && len(e.Selectors) == 0 &&
		len(e.OneOf) == 0 && len(e.Levels) == 0 && len(e.IterationLevels) == 0 && len(e.IterationArtifacts) == 0 && !e.ResultEnvelope &&
		len(e.FinalStatus) == 0
}

// fullStatus completes a status folded from engine statuses (text, the
// comma-joined statuses) with what src knows, as KFP reports it: error is
// {} unless the state is FAILED, then code 2 (google.rpc UNKNOWN) and the
// failed tasks.
func (src FinalStatusSource) fullStatus(folded *structpb.Value, text string) *structpb.Value {
	fields := map[string]*structpb.Value{}
	for k, v := range folded.GetStructValue().GetFields() {
		fields[k] = v
	}
	fields["pipelineTaskName"] = structpb.NewStringValue(src.Task)
	fields["pipelineJobResourceName"] = structpb.NewStringValue(src.Run)
	errObj := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	if fields["state"].GetStringValue() == "FAILED" {
		var failed []string
		for i, st := range strings.Split(text, ",") {
			if strings.TrimSpace(st) == "Failed" && i < len(src.Leaves) {
				failed = append(failed, src.Leaves[i])
			}
		}
		errObj.Fields["code"] = structpb.NewNumberValue(2)
		errObj.Fields["message"] = structpb.NewStringValue("failed tasks: " + strings.Join(failed, ", "))
	}
	fields["error"] = structpb.NewStructValue(errObj)
	return structpb.NewStructValue(&structpb.Struct{Fields: fields})
}

// Encode returns the --extra-b64 value of e.
func (e Extra) Encode() (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encoding launcher extension config: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeExtra parses an --extra-b64 value strictly: an unknown field means
// the compiler and the launcher disagree, which must fail loudly. Numbers in
// static item lists keep their exact text.
func DecodeExtra(b64 string) (Extra, error) {
	var e Extra
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Extra{}, fmt.Errorf("--extra-b64 is not base64: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		return Extra{}, fmt.Errorf("--extra-b64 is not a valid extension config: %w", err)
	}
	return e, nil
}

// OneOfCandidate is one branch of a dsl.OneOf.
type OneOfCandidate struct {
	Input  string   `json:"input"`  // the --param/--artifact (or --list-*) carrying the value
	Guards []string `json:"guards"` // the inputs that must all be "true"
}

// ListInput tells the launcher what to do with an aggregated result array.
type ListInput struct {
	// Enveloped: each element is an Envelope written by a matrixed task.
	// Tekton orders aggregated results by TaskRun name ("-10" before "-2",
	// hashed names when long), so position means nothing and the envelope's
	// path places each element.
	Enveloped bool `json:"enveloped,omitempty"`
	// PerIteration: take the element whose path equals this iteration's
	// path[:Level+1] (not enveloped: element [index]); otherwise collect
	// (dsl.Collected): the elements whose path[:Level] equals this task's
	// own, ordered by path and nested into one list per remaining level.
	PerIteration bool `json:"perIteration,omitempty"`
	Level        int  `json:"level,omitempty"`
	// ElementType is the KFP parameter type name of each element ("" for
	// artifacts), e.g. "NUMBER_INTEGER".
	ElementType string `json:"elementType,omitempty"`
}

// Level says where one loop level's items come from (exactly one of Raw,
// Input, ArtifactInput, FromItem); the items subcommand reads it.
type Level struct {
	Raw           []any    `json:"raw,omitempty"`           // a static list
	Input         string   `json:"input,omitempty"`         // a --param holding a JSON list
	ArtifactInput string   `json:"artifactInput,omitempty"` // an --artifact/--list-artifact: the items are its URIs
	FromItem      *ItemRef `json:"fromItem,omitempty"`      // a list inside an outer level's item
}

// ItemRef is the item of an enclosing loop level, with a selector applied.
type ItemRef struct {
	Level    int    `json:"level"`
	Selector string `json:"selector,omitempty"`
}

// Iteration is one loop iteration as the Tekton matrix passes it
// (--iteration). Index and Item are the innermost level's; nested loops add,
// for each level from the outermost, the index path and the items.
type Iteration struct {
	Index int               `json:"index"`
	Item  json.RawMessage   `json:"item"`
	Path  []int             `json:"path,omitempty"`
	Items []json.RawMessage `json:"items,omitempty"`
}

// IndexPath is the iteration's index per level, outermost first.
func (it Iteration) IndexPath() []int {
	if len(it.Path) > 0 {
		return it.Path
	}
	return []int{it.Index}
}

// LevelItem is the item of level (0 = outermost; -1 = innermost).
func (it Iteration) LevelItem(level int) (json.RawMessage, error) {
	if level < 0 {
		return it.Item, nil
	}
	if len(it.Items) == 0 {
		if level == 0 {
			return it.Item, nil
		}
		return nil, fmt.Errorf("loop level %d: the iteration has one level", level)
	}
	if level >= len(it.Items) {
		return nil, fmt.Errorf("loop level %d: the iteration has %d levels", level, len(it.Items))
	}
	return it.Items[level], nil
}

// Envelope is a result written by a matrixed task (Extra.ResultEnvelope):
// Value is the result text as it would otherwise be written, Path the
// iteration's index path. Skipped marks an iteration whose guards did not
// hold: it has no value (KFP's Collected leaves it out).
type Envelope struct {
	Path    []int  `json:"path"`
	Value   string `json:"value"`
	Skipped bool   `json:"skipped,omitempty"`
}

// EncodeEnvelope renders a result envelope.
func EncodeEnvelope(path []int, value string, skipped bool) string {
	if path == nil {
		path = []int{}
	}
	b, _ := json.Marshal(Envelope{Path: path, Value: value, Skipped: skipped})
	return string(b)
}

// DecodeEnvelope parses one element of an enveloped result array.
func DecodeEnvelope(s string) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("not a result envelope {\"path\":[..],\"value\":..}: %q: %w", clip(s), err)
	}
	if len(e.Path) == 0 {
		return Envelope{}, fmt.Errorf("result envelope %q has an empty path", clip(s))
	}
	return e, nil
}

// comparePaths orders index paths lexicographically by number (so 2 comes
// before 10, unlike Tekton's TaskRun-name order).
func comparePaths(a, b []int) int { return slices.Compare(a, b) }

func (inv Invocation) iteration() (*Iteration, error) {
	if inv.Iteration == "" {
		return nil, nil
	}
	var it Iteration
	if err := json.Unmarshal([]byte(inv.Iteration), &it); err != nil {
		return nil, fmt.Errorf("--iteration %s: want {\"index\":N,\"item\":...}: %w", clip(inv.Iteration), err)
	}
	if it.Index < 0 {
		return nil, fmt.Errorf("--iteration %s: negative index", clip(inv.Iteration))
	}
	if len(it.Path) > 0 && (len(it.Items) != len(it.Path) || it.Path[len(it.Path)-1] != it.Index) {
		return nil, fmt.Errorf("--iteration %s: path and items must have one entry per level, the last being index", clip(inv.Iteration))
	}
	for _, i := range it.Path {
		if i < 0 {
			return nil, fmt.Errorf("--iteration %s: negative index in path", clip(inv.Iteration))
		}
	}
	return &it, nil
}
