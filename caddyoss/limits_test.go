package caddyoss

import (
	"net/url"
	"testing"
)

// queryValues reads parameters as url.Values.Get does.
func TestQueryValuesMatchesParseQuery(t *testing.T) {
	for _, raw := range []string{
		"", "filename=a.png&type=image/png&size=10", "type=image%2Fpng&filename=a+b.png", "filename=x&filename=y",
		"size=&type", "filename=%zz&filename=ok", "a=1;filename=bad&filename=good", "&&filename=%E4%B8%AD.png&",
		"filename", "type=text/plain;charset=utf-8", "TYPE=upper&type=lower", "filename=a%26b%3Dc",
	} {
		got := queryValues(raw, "filename", "type", "size")
		q, _ := url.ParseQuery(raw)
		for i, n := range []string{"filename", "type", "size"} {
			if got[i] != q.Get(n) {
				t.Errorf("%q: %s = %q, url.ParseQuery says %q", raw, n, got[i], q.Get(n))
			}
		}
	}
}
