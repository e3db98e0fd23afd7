package caddyoss

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The signing routes write their JSON by hand into pooled buffers: no
// reflection, no maps, and nothing encoded twice. appendJSONString writes
// exactly what encoding/json writes with SetEscapeHTML(false), so a policy
// signed here reads as the encoder would have written it (jsonw_test.go
// checks this against encoding/json).

var jsonBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getJSONBuf() *[]byte { return jsonBufPool.Get().(*[]byte) }

func putJSONBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		jsonBufPool.Put(b)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONStringContent(b, s)
	return append(b, '"')
}

// jsonPlain marks the ASCII bytes a JSON string holds as they are.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jsonPlainRun returns how many of s's leading bytes need no escaping in
// a JSON string, looking at eight at a time; it may stop early (at most
// eight bytes before an escape), never late.
func jsonPlainRun(s string) int {
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

// jsonPlainBytes reports whether b needs no escaping in a JSON string.
func jsonPlainBytes(b []byte) bool {
	for _, c := range b {
		if !jsonPlain[c] {
			return false
		}
	}
	return true
}

// appendJSONStringContent appends s escaped as inside a JSON string
// literal, without the quotes.
func appendJSONStringContent(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			i += jsonPlainRun(s[i:])
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

// jsonObject appends the members of one JSON object.
type jsonObject struct {
	b []byte
	n int
}

func (o *jsonObject) open()  { o.b = append(o.b, '{') }
func (o *jsonObject) close() { o.b = append(o.b, '}') }

func (o *jsonObject) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = appendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

// raw writes v, which must be valid JSON, as it is.
func (o *jsonObject) raw(k string, v []byte) {
	o.key(k)
	o.b = append(o.b, v...)
}

// object writes a nested object whose members fill appends.
func (o *jsonObject) object(k string, fill func(*jsonObject)) {
	o.key(k)
	inner := jsonObject{b: o.b}
	inner.open()
	fill(&inner)
	inner.close()
	o.b = inner.b
}

// writeJSONObject answers 200 with the JSON object whose members fill
// writes, built in a pooled buffer.
func writeJSONObject(w http.ResponseWriter, fill func(o *jsonObject)) error {
	bp := getJSONBuf()
	defer putJSONBuf(bp)
	o := jsonObject{b: *bp}
	o.open()
	fill(&o)
	o.close()
	*bp = o.b
	return writeJSONBytes(w, http.StatusOK, o.b)
}

// contentLengths holds the Content-Length strings of the answer sizes
// seen so far (below maxSharedLength). Strings cannot be changed, so they
// may be shared; the slices that carry them in a header may not.
var contentLengths sync.Map // int → string

const maxSharedLength = 8 << 10

// contentLength is the Content-Length header value for n bytes.
func contentLength(n int) string {
	if n >= maxSharedLength {
		return strconv.Itoa(n)
	}
	if v, ok := contentLengths.Load(n); ok {
		return v.(string)
	}
	v, _ := contentLengths.LoadOrStore(n, strconv.Itoa(n))
	return v.(string)
}

// setAnswerHeaders sets Content-Type, Cache-Control (unless a handler
// before this one set it) and Content-Length. The value slices are this
// answer's own: a handler wrapping this one may write into them in place
// (Caddy's header directive does, for deferred replacements). They share
// one backing array, each capped at its one element, so that appending to
// one cannot reach the next.
func setAnswerHeaders(h http.Header, contentType string, n int) {
	v := make([]string, 3)
	v[0], v[1], v[2] = contentType, "no-store", contentLength(n)
	h["Content-Type"] = v[0:1:1]
	if len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = v[1:2:2]
	}
	h["Content-Length"] = v[2:3:3]
}

// writeJSONBytes answers with a JSON body that no cache may store.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) error {
	setAnswerHeaders(w.Header(), "application/json", len(body))
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}
