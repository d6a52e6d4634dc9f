package ir

import (
	"encoding/json"
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// unknownField is a JSON member that the compiled-in protobuf descriptors do
// not declare (or an enum value they do not know). The Go KFP types date from
// late 2023 while current SDKs keep adding fields, so these are expected and
// each one is either honoured, ignored by policy, or rejected (see policy.go).
type unknownField struct {
	at    location // where the member sits (the object holding it)
	field string   // the member name as written; for an enum in a map, ""
	value any      // decoded JSON value
	enum  bool     // true when the field is known but its enum value is not
	bad   string   // set when the field is known but its JSON has the wrong shape
}

// location is a position in a document, both as a concrete path
// (root.dag.tasks['a']) and as a pattern with map keys and list indexes
// replaced by [*] (root.dag.tasks[*]), plus the map keys along the way.
type location struct {
	path    string
	pattern string
	keys    []string
}

func (l location) field(name string) location {
	return location{path: join(l.path, name), pattern: join(l.pattern, name), keys: l.keys}
}

func (l location) key(k string) location {
	keys := append(append([]string(nil), l.keys...), k)
	return location{path: l.path + "['" + k + "']", pattern: l.pattern + "[*]", keys: keys}
}

func (l location) index(i int) location {
	return location{path: l.path + "[" + strconv.Itoa(i) + "]", pattern: l.pattern + "[*]", keys: l.keys}
}

// path is the full path of the field itself.
func (u unknownField) path() string {
	if u.field == "" {
		return u.at.path
	}
	return join(u.at.path, u.field)
}

// pattern is the generalised path of the field itself.
func (u unknownField) pattern() string {
	if u.field == "" {
		return u.at.pattern
	}
	return join(u.at.pattern, u.field)
}

// stripUnknown walks a generic JSON object against a message descriptor,
// removes every member the descriptor does not declare and returns them. What
// remains can be decoded by protojson without DiscardUnknown, so nothing is
// dropped silently: the caller decides about every removed member.
func stripUnknown(obj map[string]any, md protoreflect.MessageDescriptor, at location) []unknownField {
	var out []unknownField
	walkMessage(obj, md, at, &out)
	return out
}

func walkMessage(obj map[string]any, md protoreflect.MessageDescriptor, at location, out *[]unknownField) {
	fields := md.Fields()
	for key, val := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(key))
		}
		if fd == nil {
			*out = append(*out, unknownField{at: at, field: key, value: val})
			delete(obj, key)
			continue
		}
		fat := at.field(key)
		if val == nil {
			continue // null is the default value for every field
		}
		switch {
		case fd.IsMap():
			m, ok := val.(map[string]any)
			if !ok {
				*out = append(*out, unknownField{at: at, field: key, value: val, bad: "want an object (map)"})
				continue
			}
			vd := fd.MapValue()
			for k, v := range m {
				kat := fat.key(k)
				if why := shapeProblem(v, vd); why != "" {
					*out = append(*out, unknownField{at: kat, value: v, bad: why})
					continue
				}
				if vd.Kind() == protoreflect.EnumKind && isUnknownEnum(v, vd) {
					*out = append(*out, unknownField{at: kat, value: v, enum: true})
					delete(m, k)
					continue
				}
				walkValue(v, vd, kat, out)
			}
		case fd.IsList():
			l, ok := val.([]any)
			if !ok {
				*out = append(*out, unknownField{at: at, field: key, value: val, bad: "want a list"})
				continue
			}
			for i, v := range l {
				if why := shapeProblem(v, fd); why != "" {
					*out = append(*out, unknownField{at: fat.index(i), value: v, bad: why})
					continue
				}
				walkValue(v, fd, fat.index(i), out)
			}
		default:
			if why := shapeProblem(val, fd); why != "" {
				*out = append(*out, unknownField{at: at, field: key, value: val, bad: why})
				continue
			}
			if fd.Kind() == protoreflect.EnumKind && isUnknownEnum(val, fd) {
				*out = append(*out, unknownField{at: at, field: key, value: val, enum: true})
				delete(obj, key)
				continue
			}
			walkValue(val, fd, fat, out)
		}
	}
}

// walkValue descends into a message-typed value. Well-known types
// (Struct, Value, ListValue, Duration, ...) have their own free-form JSON
// mapping and are not walked.
func walkValue(v any, fd protoreflect.FieldDescriptor, at location, out *[]unknownField) {
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		return
	}
	md := fd.Message()
	if md.FullName().Parent() == "google.protobuf" {
		return
	}
	if m, ok := v.(map[string]any); ok {
		walkMessage(m, md, at, out)
	}
}

// isUnknownEnum reports whether v names an enum value the descriptor lacks.
// Numeric values are left to protojson, which accepts open enums.
func isUnknownEnum(v any, fd protoreflect.FieldDescriptor) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	return fd.Enum().Values().ByName(protoreflect.Name(s)) == nil
}

// shapeProblem checks that a JSON value can be a (singular) value of field
// fd, so that a type error is reported with its path instead of protojson's
// offset into re-encoded JSON. It returns "" when the shape is right.
func shapeProblem(v any, fd protoreflect.FieldDescriptor) string {
	if v == nil {
		return ""
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			return "want a string, got " + jsonText(v)
		}
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return "want true or false, got " + jsonText(v)
		}
	case protoreflect.EnumKind:
		switch v.(type) {
		case string, json.Number:
		default:
			return "want an enum name, got " + jsonText(v)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Value":
			return ""
		case "google.protobuf.ListValue":
			if _, ok := v.([]any); !ok {
				return "want a list, got " + jsonText(v)
			}
			return ""
		case "google.protobuf.Duration", "google.protobuf.Timestamp":
			if _, ok := v.(string); !ok {
				return "want a string, got " + jsonText(v)
			}
			return ""
		}
		if _, ok := v.(map[string]any); !ok {
			return "want an object, got " + jsonText(v)
		}
	default: // numbers: protojson also accepts numeric strings
		switch v.(type) {
		case json.Number, string:
		default:
			return "want a number, got " + jsonText(v)
		}
	}
	return ""
}
