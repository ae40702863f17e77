package media

import (
	"mime"
	"strings"
	"unicode/utf8"
)

// Limits on what is stored of names and types, uploaded or remote.
const (
	MaxFileNameBytes    = 1024
	MaxContentTypeBytes = 255
)

// octetStream is the type of bytes whose type is unknown or unusable.
const octetStream = "application/octet-stream"

// ContentType normalises a claimed Content-Type to what is stored and served:
// one media type, lower case, without parameters but a text type's charset.
// A value that is not a type/subtype becomes application/octet-stream.
// Browsers read a list like "text/plain;,text/html" as its last type, so the
// stored type must be the one every check looked at.
func ContentType(claimed string) string {
	if simpleType(claimed) {
		return claimed // the common case, without parsing
	}
	mt, params, _ := mime.ParseMediaType(claimed) // a bad parameter still yields the type
	major, minor, ok := strings.Cut(mt, "/")
	if !ok || major == "" || minor == "" || len(mt) > MaxContentTypeBytes {
		return octetStream
	}
	if major == "text" {
		if cs := strings.ToLower(params["charset"]); cs != "" && isCharsetName(cs) {
			return mt + "; charset=" + cs
		}
	}
	return mt
}

// simpleType reports whether s is a lower-case type/subtype without
// parameters, which ContentType would return unchanged.
func simpleType(s string) bool {
	slash := strings.IndexByte(s, '/')
	if slash <= 0 || slash == len(s)-1 || len(s) > MaxContentTypeBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i != slash && !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&^_.+-", c) >= 0) {
			return false
		}
	}
	return true
}

// isCharsetName accepts the characters IANA charset names use.
func isCharsetName(s string) bool {
	if len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:", c) >= 0) {
			return false
		}
	}
	return true
}

// FileName cleans a file name for storing and serving: invalid UTF-8, C0 and
// C1 control characters (CR, LF, NUL, ...) and the Unicode controls that
// reorder text (U+202E shows "gpj.exe" as "exe.jpg") become "_", and a name
// over MaxFileNameBytes is cut at a character boundary.
func FileName(name string) string {
	if clean(name) {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(name, "\uFFFD") {
		if r == utf8.RuneError || unsafeRune(r) {
			r = '_'
		}
		if b.Len()+utf8.RuneLen(r) > MaxFileNameBytes {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// clean reports whether name needs no change, the common case.
func clean(name string) bool {
	if len(name) > MaxFileNameBytes || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unsafeRune(r) {
			return false
		}
	}
	return true
}

// unsafeRune: C0 and C1 controls, DEL, and the bidi embedding, override and
// isolate controls and marks.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Printable accepts valid UTF-8 of at most max bytes without control
// characters: what every database stores and every header can carry.
func Printable(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
