package compile

import "strings"

// DNSLabel lowercases s and replaces every run of characters outside [a-z0-9] with one
// "-", trimming dashes at both ends: the core of a Kubernetes DNS-1123 name. Callers
// bound the length themselves.
func DNSLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
