package ir

import (
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// unknownField is a JSON member that the compiled-in protobuf descriptors do
// not declare (or an enum value they do not know). The Go KFP types date from
// late 2023 while current SDKs keep adding fields, so these are expected and
// each one is either honoured, ignored by policy, or rejected (see policy.go).
type unknownField struct {
	parent string // path of the object holding the field
	field  string // the member name as written
	value  any    // decoded JSON value
	enum   bool   // true when the field is known but its enum value is not
}

// path is the full path of the field itself.
func (u unknownField) path() string { return join(u.parent, u.field) }

// stripUnknown walks a generic JSON object against a message descriptor,
// removes every member the descriptor does not declare and returns them. What
// remains can be decoded by protojson without DiscardUnknown, so nothing is
// dropped silently: the caller decides about every removed member.
func stripUnknown(obj map[string]any, md protoreflect.MessageDescriptor, path string) []unknownField {
	var out []unknownField
	walkMessage(obj, md, path, &out)
	return out
}

func walkMessage(obj map[string]any, md protoreflect.MessageDescriptor, path string, out *[]unknownField) {
	fields := md.Fields()
	for key, val := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(key))
		}
		if fd == nil {
			*out = append(*out, unknownField{parent: path, field: key, value: val})
			delete(obj, key)
			continue
		}
		fpath := join(path, key)
		switch {
		case fd.IsMap():
			m, ok := val.(map[string]any)
			if !ok {
				continue // protojson reports the type error with the field name
			}
			vd := fd.MapValue()
			for k, v := range m {
				walkValue(v, vd, fpath+"['"+k+"']", out)
				if vd.Kind() == protoreflect.EnumKind && isUnknownEnum(v, vd) {
					*out = append(*out, unknownField{parent: fpath, field: "['" + k + "']", value: v, enum: true})
					delete(m, k)
				}
			}
		case fd.IsList():
			l, ok := val.([]any)
			if !ok {
				continue
			}
			for i, v := range l {
				walkValue(v, fd, fpath+"["+strconv.Itoa(i)+"]", out)
			}
		default:
			if fd.Kind() == protoreflect.EnumKind && isUnknownEnum(val, fd) {
				*out = append(*out, unknownField{parent: path, field: key, value: val, enum: true})
				delete(obj, key)
				continue
			}
			walkValue(val, fd, fpath, out)
		}
	}
}

// walkValue descends into a message-typed value. Well-known types
// (Struct, Value, ListValue, ...) have free-form JSON and are not walked.
func walkValue(v any, fd protoreflect.FieldDescriptor, path string, out *[]unknownField) {
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		return
	}
	md := fd.Message()
	if md.FullName().Parent() == "google.protobuf" {
		return
	}
	if m, ok := v.(map[string]any); ok {
		walkMessage(m, md, path, out)
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
