// Package jsonw appends JSON to byte slices by hand: no reflection, no
// maps, and nothing encoded twice. AppendString writes exactly what
// encoding/json writes with SetEscapeHTML(false), so a policy signed from
// these bytes reads as the encoder would have written it (the tests check
// this against encoding/json).
//
// Buffers from Get go back with Put in the function that took them; a
// buffer's bytes are never handed out after Put.
package jsonw

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooled is the largest buffer capacity Put keeps.
const maxPooled = 64 << 10

// Get returns an empty buffer from the pool.
func Get() *[]byte { return bufPool.Get().(*[]byte) }

// Put returns b to the pool (unless it grew beyond 64 KiB). The caller
// must not use *b afterwards.
func Put(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = AppendStringContent(b, s)
	return append(b, '"')
}

// plain marks the ASCII bytes a JSON string holds as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainRun returns how many of s's leading bytes need no escaping in a
// JSON string, looking at eight at a time; it may stop early (at most
// eight bytes before an escape), never late.
func plainRun(s string) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q := x ^ (lo * '"')
		bs := x ^ (lo * '\\')
		// A byte below 0x20, a quote, a backslash or a non-ASCII byte
		// sets its high bit here (the usual has-zero-byte test, which
		// has no false positives in a word without a true one).
		if ((x-lo*0x20)&^x|(q-lo)&^q|(bs-lo)&^bs|x)&hi != 0 {
			break
		}
	}
	return i
}

// Plain reports whether b is ASCII that needs no escaping in a JSON
// string.
func Plain(b []byte) bool {
	for _, c := range b {
		if !plain[c] {
			return false
		}
	}
	return true
}

// AppendStringContent appends s escaped as inside a JSON string literal,
// without the quotes.
func AppendStringContent(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			i += plainRun(s[i:])
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 end lines in JavaScript; encoding/json escapes
		// them whatever SetEscapeHTML says.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// Object appends one JSON object's members to B. Open it, add members,
// Close it; B is the bytes so far.
type Object struct {
	B []byte
	n int
}

// Open appends the object's opening brace.
func (o *Object) Open() { o.B = append(o.B, '{') }

// Close appends the object's closing brace.
func (o *Object) Close() { o.B = append(o.B, '}') }

// Key appends a member name and the colon; the caller appends the value.
func (o *Object) Key(k string) {
	if o.n > 0 {
		o.B = append(o.B, ',')
	}
	o.n++
	o.B = AppendString(o.B, k)
	o.B = append(o.B, ':')
}

// Str appends a string member.
func (o *Object) Str(k, v string) {
	o.Key(k)
	o.B = AppendString(o.B, v)
}

// Int appends an integer member.
func (o *Object) Int(k string, v int64) {
	o.Key(k)
	o.B = strconv.AppendInt(o.B, v, 10)
}

// Raw appends a member whose value v, which must be valid JSON, is
// written as it is.
func (o *Object) Raw(k string, v []byte) {
	o.Key(k)
	o.B = append(o.B, v...)
}

// Object appends a nested object whose members fill appends.
func (o *Object) Object(k string, fill func(*Object)) {
	o.Key(k)
	inner := Object{B: o.B}
	inner.Open()
	fill(&inner)
	inner.Close()
	o.B = inner.B
}

// Marshal is json.Marshal without HTML escaping, so what is signed reads as
// written.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
