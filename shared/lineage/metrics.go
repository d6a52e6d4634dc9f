package lineage

import (
	"encoding/json"
	"fmt"
	"math"
)

// Metrics are the values a metrics artifact carries, typed.
type Metrics struct {
	// Scalars are system.Metrics' numeric metadata entries (KFP's log_metric).
	Scalars map[string]float64 `json:"scalars,omitempty"`
	// ConfusionMatrix is system.ClassificationMetrics' confusionMatrix.
	ConfusionMatrix *ConfusionMatrix `json:"confusion_matrix,omitempty"`
	// ROC is system.ClassificationMetrics' confidenceMetrics, in logged order.
	ROC []ConfidencePoint `json:"roc,omitempty"`
}

// ConfusionMatrix is a square matrix: Rows[i][j] counts examples of class Labels[i]
// predicted as Labels[j].
type ConfusionMatrix struct {
	Labels []string    `json:"labels"`
	Rows   [][]float64 `json:"rows"`
}

// ConfidencePoint is one point of a ROC curve.
type ConfidencePoint struct {
	Threshold         float64 `json:"threshold"`
	Recall            float64 `json:"recall"` // true positive rate
	FalsePositiveRate float64 `json:"false_positive_rate"`
}

// IsMetricsType reports whether artifacts of type t carry metrics ParseMetrics reads.
func IsMetricsType(t string) bool {
	return t == TypeMetrics || t == TypeClassificationMetrics
}

// ParseMetrics reads the metadata of a metrics artifact of type t, in the shapes KFP's
// SDK writes:
//
//   - system.Metrics: every metadata entry whose value is a number is a scalar metric
//     (log_metric(name, value) sets metadata[name] = value); other entries (such as
//     display_name) are not metrics and are skipped.
//   - system.ClassificationMetrics: "confusionMatrix" = {"annotationSpecs":
//     [{"displayName": label}, …], "rows": [{"row": [n, …]}, …]} (older SDKs wrote rows as
//     bare lists, which are read too) and "confidenceMetrics" = [{"confidenceThreshold",
//     "recall", "falsePositiveRate"}, …].
//
// Other types yield empty Metrics. Malformed shapes are errors naming the offending path.
func ParseMetrics(t string, metadata map[string]any) (Metrics, error) {
	var m Metrics
	switch t {
	case TypeMetrics:
		for k, v := range metadata {
			if f, ok := number(v); ok {
				if m.Scalars == nil {
					m.Scalars = map[string]float64{}
				}
				m.Scalars[k] = f
			}
		}
	case TypeClassificationMetrics:
		if cm, ok := metadata["confusionMatrix"]; ok && cm != nil {
			c, err := parseConfusion(cm)
			if err != nil {
				return Metrics{}, err
			}
			m.ConfusionMatrix = c
		}
		if roc, ok := metadata["confidenceMetrics"]; ok && roc != nil {
			r, err := parseROC(roc)
			if err != nil {
				return Metrics{}, err
			}
			m.ROC = r
		}
	}
	return m, nil
}

func parseConfusion(v any) (*ConfusionMatrix, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metadata.confusionMatrix: is %s, want an object", kind(v))
	}
	specs, ok := obj["annotationSpecs"].([]any)
	if !ok {
		return nil, fmt.Errorf("metadata.confusionMatrix.annotationSpecs: is %s, want a list", kind(obj["annotationSpecs"]))
	}
	cm := &ConfusionMatrix{Labels: make([]string, 0, len(specs))}
	for i, s := range specs {
		so, ok := s.(map[string]any)
		name, ok2 := so["displayName"].(string)
		if !ok || !ok2 {
			return nil, fmt.Errorf("metadata.confusionMatrix.annotationSpecs[%d]: want {\"displayName\": string}", i)
		}
		cm.Labels = append(cm.Labels, name)
	}
	rows, ok := obj["rows"].([]any)
	if !ok {
		return nil, fmt.Errorf("metadata.confusionMatrix.rows: is %s, want a list", kind(obj["rows"]))
	}
	if len(rows) != len(cm.Labels) {
		return nil, fmt.Errorf("metadata.confusionMatrix.rows: %d rows for %d labels", len(rows), len(cm.Labels))
	}
	for i, r := range rows {
		cells, ok := r.([]any)
		if ro, isObj := r.(map[string]any); isObj {
			cells, ok = ro["row"].([]any)
		}
		if !ok {
			return nil, fmt.Errorf("metadata.confusionMatrix.rows[%d]: want {\"row\": [numbers]}", i)
		}
		if len(cells) != len(cm.Labels) {
			return nil, fmt.Errorf("metadata.confusionMatrix.rows[%d]: %d cells for %d labels", i, len(cells), len(cm.Labels))
		}
		row := make([]float64, len(cells))
		for j, c := range cells {
			f, ok := number(c)
			if !ok {
				return nil, fmt.Errorf("metadata.confusionMatrix.rows[%d][%d]: is %s, want a number", i, j, kind(c))
			}
			row[j] = f
		}
		cm.Rows = append(cm.Rows, row)
	}
	return cm, nil
}

func parseROC(v any) ([]ConfidencePoint, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("metadata.confidenceMetrics: is %s, want a list", kind(v))
	}
	out := make([]ConfidencePoint, 0, len(list))
	for i, p := range list {
		po, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("metadata.confidenceMetrics[%d]: is %s, want an object", i, kind(p))
		}
		var cp ConfidencePoint
		for _, f := range []struct {
			key string
			dst *float64
		}{{"confidenceThreshold", &cp.Threshold}, {"recall", &cp.Recall}, {"falsePositiveRate", &cp.FalsePositiveRate}} {
			x, ok := number(po[f.key])
			if !ok {
				return nil, fmt.Errorf("metadata.confidenceMetrics[%d].%s: is %s, want a number", i, f.key, kind(po[f.key]))
			}
			*f.dst = x
		}
		out = append(out, cp)
	}
	return out, nil
}

// number accepts the numeric forms metadata takes after JSON or structpb decoding. NaN
// and infinities are not numbers JSON can carry back out, so they are refused.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "missing or null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// ScalarNames returns the union of the scalar metric names of ms, sorted: the columns of
// a run comparison.
func ScalarNames(ms ...Metrics) []string {
	seen := map[string]bool{}
	for _, m := range ms {
		for k := range m.Scalars {
			seen[k] = true
		}
	}
	return sortedKeys(seen)
}
