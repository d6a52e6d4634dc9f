package ir

import "encoding/json"

// applyPolicy decides about one member unknown to the compiled-in protobuf
// types: honour it (keep it in Extras), ignore it, or reject it.
func (p *Pipeline) applyPolicy(u unknownField, ps *problems) {
	raw, err := json.Marshal(u.value)
	if err != nil {
		ps.add(u.path(), "cannot re-encode unknown field: %v", err)
		return
	}
	if u.parent == "" {
		ps.add(u.path(), "unknown field %q at top level of the pipeline spec", u.field)
		return
	}
	if p.Extras == nil {
		p.Extras = map[string]json.RawMessage{}
	}
	p.Extras[u.path()] = raw
}
