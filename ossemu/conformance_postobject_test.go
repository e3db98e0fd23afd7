package ossemu_test

// The PostObject policy document's grammar.

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/caddy-oss/caddy-oss/ossemu"
)

// postRawPolicy posts a form signed (V1) over a policy document given as
// raw JSON text, with extra fields before the file.
func postRawPolicy(t *testing.T, emu *ossemu.Emulator, policyJSON string, fields []formField, data []byte) (int, string) {
	t.Helper()
	p := base64.StdEncoding.EncodeToString([]byte(policyJSON))
	all := append([]formField{{"OSSAccessKeyId", testAK}, {"policy", p}, {"Signature", hmacSHA1(testSK, p)}}, fields...)
	all = append(all, formField{"file", ""})
	resp, body := postObject(t, emu.Endpoint()+"/"+testBucket, all, "f.txt", "text/plain", data)
	var e struct{ Code string }
	_ = xmlUnmarshal([]byte(body), &e)
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode)
	}
	return resp.StatusCode, e.Code
}

// TestPostPolicyGrammar: content-length-range takes JSON integers, the
// document is one JSON object with nothing after it, operators are
// lower-case, and \$ in a value is a literal $ (protocol.md §1.3).
func TestPostPolicyGrammar(t *testing.T) {
	emu := startEmu(t, ossemu.Options{})
	exp := policyExpiring()
	doc := func(conds string) string { return `{"expiration":"` + exp + `","conditions":[` + conds + `]}` }
	key := []formField{{"key", "up/a.txt"}}
	for _, tc := range []struct {
		name   string
		policy string
		fields []formField
		status int
		code   string
	}{
		{"integer range", doc(`["content-length-range",1,10]`), key, 204, ""},
		{"range bounds as strings", doc(`["content-length-range","1","10"]`), key, 400, "InvalidPolicyDocument"},
		{"range maximum as a string", doc(`["content-length-range",1,"10"]`), key, 400, "InvalidPolicyDocument"},
		{"range with a fraction", doc(`["content-length-range",1.5,10]`), key, 400, "InvalidPolicyDocument"},
		{"range with an exponent", doc(`["content-length-range",1,1e3]`), key, 400, "InvalidPolicyDocument"},
		{"range bound null", doc(`["content-length-range",null,10]`), key, 400, "InvalidPolicyDocument"},
		{"whitespace after the document", doc(`["starts-with","$key","up/"]`) + "\n\t ", key, 204, ""},
		{"a character after the document", doc(`["starts-with","$key","up/"]`) + "x", key, 400, "InvalidPolicyDocument"},
		{"a second object after the document", doc(`["starts-with","$key","up/"]`) + "{}", key, 400, "InvalidPolicyDocument"},
		{"a brace after the document", doc(`["starts-with","$key","up/"]`) + "}", key, 400, "InvalidPolicyDocument"},
		{"null document", "null", key, 400, "InvalidPolicyDocument"},
		{"Starts-With", doc(`["Starts-With","$key","up/"]`), key, 400, "InvalidPolicyDocument"},
		{"EQ", doc(`["EQ","$key","up/a.txt"]`), key, 400, "InvalidPolicyDocument"},
		{"IN", doc(`["IN","$key",["up/a.txt"]]`), key, 400, "InvalidPolicyDocument"},
		{"Content-Length-Range", doc(`["Content-Length-Range",1,10]`), key, 400, "InvalidPolicyDocument"},
		{"lower-case eq", doc(`["eq","$key","up/a.txt"]`), key, 204, ""},
		{`\$ is a literal $`, doc(`["eq","$x:price","\$5"]`), []formField{{"key", "up/a.txt"}, {"x:price", "$5"}}, 204, ""},
		{`\$ does not match \$`, doc(`["eq","$x:price","\$5"]`), []formField{{"key", "up/a.txt"}, {"x:price", `\$5`}}, 403, "AccessDenied"},
		{`\$ in starts-with`, doc(`["starts-with","$key","up/\$"]`), []formField{{"key", "up/$a.txt"}}, 204, ""},
		{`\$ in a simple condition`, doc(`{"x:tag":"a\$b"}`), []formField{{"key", "up/a.txt"}, {"x:tag", "a$b"}}, 204, ""},
		{`\$ in an in list`, doc(`["in","$x:tag",["\$1","\$2"]]`), []formField{{"key", "up/a.txt"}, {"x:tag", "$2"}}, 204, ""},
		{`\\$ is a backslash and a $`, doc(`["eq","$x:p","a\\$"]`), []formField{{"key", "up/a.txt"}, {"x:p", `a\$`}}, 204, ""},
		{`\\$ does not match $`, doc(`["eq","$x:p","a\\$"]`), []formField{{"key", "up/a.txt"}, {"x:p", `a$`}}, 403, "AccessDenied"},
		{`an unknown escape stays refused`, doc(`["eq","$x:p","\q"]`), []formField{{"key", "up/a.txt"}, {"x:p", "q"}}, 400, "InvalidPolicyDocument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := postRawPolicy(t, emu, tc.policy, tc.fields, []byte("hello"))
			if status != tc.status || (tc.code != "" && code != tc.code) {
				t.Fatalf("%s: %d %s, want %d %s", tc.policy, status, code, tc.status, tc.code)
			}
		})
	}
}
