package caddyoss

// Attacks on the confirm route: generated variants of tokens, keys and
// bodies, each refused with its status before anything reaches the app;
// objects outside the limits refused and deleted. The app, at the end, has
// received the genuine uploads once each, and nothing else.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// forge signs a confirm token with the test's binding key for handler
// id, valid until expiry.
func forge(id string, kind callback.Kind, bucket, scope string, expiry time.Time, vars map[string]string) string {
	key := callback.HandlerKey([]byte(cfBindingKey), id)
	return callback.ConfirmToken(callback.Encode(key, kind, bucket, scope, expiry, vars), vars)
}

// tokenCase is a confirm of key with token, refused with status, its
// error saying why.
type tokenCase struct {
	name, key, token string
	status           int
	why              string
}

func TestConfirmRefusesForeignTokens(t *testing.T) {
	env := newConfirmEnv(t, confirmOpts{confirmOnly: true})
	alice := env.postObject(t, "alice", "a.png", "image/png", []byte("alice's png"))
	bob := env.postObject(t, "bob", "b.png", "image/png", []byte("bob's png"))
	aliceSTS := env.stsSession(t, "alice")
	mine := aliceSTS.put(t, "mine.png", "image/png", []byte("alice's sts png"))
	// An object the account's owner stored below dave's prefix, and one
	// outside every prefix: only a token for them may confirm them.
	owner, _ := oss.New(env.emu.Endpoint(), "sec-ak", "sec-secret", oss.HTTPClient(env.toOSS))
	ob, _ := owner.Bucket(secBucket)
	for _, k := range []string{"uploads/dave/d.png", "elsewhere/e.png"} {
		if err := ob.PutObject(k, strings.NewReader("owner's png"), oss.ContentType("image/png")); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Hour)
	user := func(u string) map[string]string { return map[string]string{"user": u} }
	otherSite := callback.HandlerID(secBucket, cfPrefix, cfCbPath, "http://localhost:9081"+cfCbPath)

	cases := []tokenCase{
		// Real tokens, other keys.
		{"exact token, another user's key", bob.key, alice.token, 403, "does not match"},
		{"exact token, the user's other key", mine.key, alice.token, 403, "does not match"},
		{"exact token, a key below it", alice.key + "/x", alice.token, 403, "does not match"},
		{"prefix token, another user's key", bob.key, aliceSTS.token, 403, "outside the prefix its binding names"},
		{"prefix token, outside every prefix", "elsewhere/e.png", aliceSTS.token, 403, "outside this handler's key_prefix"},
		{"prefix token, a sibling prefix", "uploads/alice2/x.png", aliceSTS.token, 403, "outside the prefix its binding names"},
		{"prefix token, dot segments", "uploads/alice/../bob/" + bob.key[len("uploads/bob/"):], aliceSTS.token, 400, "not a valid object key"},
		{"prefix token, nothing there", "uploads/alice/never.png", aliceSTS.token, 404, "no such object"},
		{"bob's token, alice's key", alice.key, bob.token, 403, "does not match"},
		// Forged with this handler's key: expiry, scope, bucket, variables.
		{"expired", alice.key, forge(env.handlerID, callback.ExactKey, secBucket, alice.key, time.Now().Add(-time.Second), user("alice")), 403, "expired"},
		{"wider prefix", "uploads/dave/d.png", forge(env.handlerID, callback.Prefix, secBucket, "uploads/", later, user("dave")), 403, "outside the prefix its binding names"},
		{"no prefix", "uploads/dave/d.png", forge(env.handlerID, callback.STS, secBucket, "", later, user("dave")), 403, "outside the prefix its binding names"},
		{"outside key_prefix", "elsewhere/e.png", forge(env.handlerID, callback.ExactKey, secBucket, "elsewhere/e.png", later, user("dave")), 403, "outside this handler's key_prefix"},
		{"another bucket", "uploads/dave/d.png", forge(env.handlerID, callback.ExactKey, "evil-bucket", "uploads/dave/d.png", later, user("dave")), 403, "does not match"},
		{"another handler", "uploads/dave/d.png", forge(otherSite, callback.ExactKey, secBucket, "uploads/dave/d.png", later, user("dave")), 403, "does not match"},
		{"no variables", "uploads/dave/d.png", forge(env.handlerID, callback.ExactKey, secBucket, "uploads/dave/d.png", later, nil), 403, "other variables"},
		{"an extra variable", "uploads/dave/d.png", forge(env.handlerID, callback.ExactKey, secBucket, "uploads/dave/d.png", later, map[string]string{"user": "dave", "admin": "1"}), 403, "other variables"},
	}
	// Real tokens with their variables or parts changed.
	b, vars, _ := callback.ParseConfirmToken(alice.token)
	vars["user"] = "bob"
	cases = append(cases, tokenCase{"variables changed", alice.key, callback.ConfirmToken(b.String(), vars), 403, "does not match"})
	for i, p := range strings.Split(alice.token, ".") {
		for _, v := range []string{"", p + "A", strings.ToUpper(p), "x" + p[min(1, len(p)):]} {
			q := strings.Split(alice.token, ".")
			q[i] = v
			if tok := strings.Join(q, "."); tok != alice.token {
				cases = append(cases, tokenCase{"part " + string(rune('0'+i)) + " changed", alice.key, tok, 403, ""})
			}
		}
	}
	for _, c := range cases {
		if c.token == "" {
			c.status = 400 // a missing token
		}
		if status, body := env.confirm(t, c.key, c.token); status != c.status || !strings.Contains(body, `"error"`) || !strings.Contains(body, c.why) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, status, body, c.status, c.why)
		}
	}
	if got := env.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d requests from refused confirms", len(got))
	}

	// A valid token forged with the key works: the refusals above are the
	// checks', not the forgery's.
	dave := forge(env.handlerID, callback.ExactKey, secBucket, "uploads/dave/d.png", later, user("dave"))
	if status, body := env.confirm(t, "uploads/dave/d.png", dave); status != 200 {
		t.Fatalf("a well-forged token: %d %s", status, body)
	}
	for _, up := range []cfUpload{alice, bob, mine} {
		if status, body := env.confirm(t, up.key, up.token); status != 200 {
			t.Errorf("confirm %s: %d %s", up.key, status, body)
		}
	}
	got := env.deliveredOnce(t, "uploads/dave/d.png", alice.key, bob.key, mine.key)
	env.checkDelivered(t, got[alice.key], alice.key, alice.token, "alice")
	env.checkDelivered(t, got[mine.key], mine.key, mine.token, "alice")
}

// A token of another site on the same Caddy, same bucket and key_prefix,
// is refused; at its own site it works.
func TestConfirmOtherSite(t *testing.T) {
	env := newConfirmEnv(t, confirmOpts{confirmOnly: true})
	other := strings.Replace(env.config, "http://localhost:9080 {", "http://localhost:9081 {", 1)
	other = strings.Replace(other, "url http://localhost:9080"+cfCbPath, "url http://localhost:9081"+cfCbPath, 1)
	other = other[strings.Index(other, "http://localhost:9081 {"):]
	env.tester.InitServer(env.config+"\n"+other, "caddyfile")
	ask := func(method, target, body string) (int, []byte) {
		req, _ := http.NewRequest(method, target, strings.NewReader(body))
		return env.ask(t, req, "alice")
	}
	status, ob := ask("GET", "http://localhost:9081/oss/presign?filename=x.png&type=image/png", "")
	var op map[string]any
	if err := json.Unmarshal(ob, &op); err != nil || status != 200 {
		t.Fatalf("the other site: %d %s", status, ob)
	}
	up := env.presignPutURL(t, op, []byte("other site's png"))
	if status, body := env.confirm(t, up.key, up.token); status != 403 {
		t.Errorf("the other site's token here: %d %s", status, body)
	}
	if len(env.app.all()) != 0 {
		t.Fatal("the app received the other site's upload from this site")
	}
	b, _ := json.Marshal(map[string]string{"key": up.key, "token": up.token})
	if status, body := ask("POST", "http://localhost:9081"+cfConfirm, string(b)); status != 200 {
		t.Errorf("the other site's token there: %d %s", status, body)
	}
	if got := env.app.verified(); len(got) != 1 {
		t.Errorf("the app received %d verified requests, want 1", len(got))
	}
}

// Bodies that are not one confirm, and every spelling of a key but its
// own, are refused; nothing reaches the app.
func TestConfirmRefusesSpellings(t *testing.T) {
	env := newConfirmEnv(t, confirmOpts{confirmOnly: true})
	up := env.postObject(t, "alice", "a.png", "image/png", []byte("alice's png"))
	s := env.stsSession(t, "alice")
	sts := s.put(t, "s.png", "image/png", []byte("alice's sts png"))
	tok := jsonQuote(up.token)
	for _, body := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"key":` + jsonQuote(up.key) + `}`, `{"token":` + tok + `}`,
		`{"key":` + jsonQuote(up.key) + `,"token":` + tok + `,"bucket":"evil-bucket"}`,
		`{"key":` + jsonQuote(up.key) + `,"token":` + tok + `,"object":"uploads/bob/x.png"}`,
		`{"key":` + jsonQuote(up.key) + `,"token":` + tok + `,"key":"uploads/alice/other.png"}`,
		`{"key":"uploads/alice/other.png","key":` + jsonQuote(up.key) + `,"token":` + tok + `}`,
		`{"Key":` + jsonQuote(up.key) + `,"token":` + tok + `}`,
		`{"key":[` + jsonQuote(up.key) + `],"token":` + tok + `}`,
		`{"key":1,"token":` + tok + `}`, `{"key":null,"token":` + tok + `}`,
		`{"key":` + jsonQuote(up.key) + `,"token":` + tok + `}{}`,
		`{"key":` + jsonQuote(up.key) + `,"token":` + tok + `} x`,
		`{"key":` + jsonQuote(up.key) + `,"token":` + tok,
		"key=" + url.QueryEscape(up.key) + "&token=" + url.QueryEscape(up.token),
	} {
		if status, answer := env.confirmRaw(t, "POST", body); status != 400 || !strings.Contains(answer, `"error"`) {
			t.Errorf("body %q: %d %s, want 400", body, status, answer)
		}
	}
	// A client's member name is clipped in the answer, and in the log line.
	long := `{"key":` + jsonQuote(up.key) + `,"token":` + tok + `,"` + strings.Repeat("x", 10000) + `":1}`
	if status, answer := env.confirmRaw(t, "POST", long); status != 400 || len(answer) > 200 {
		t.Errorf("a long member name: %d, %d bytes of answer", status, len(answer))
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if status, _ := env.confirmRaw(t, m, ""); status != 405 {
			t.Errorf("%s: %d, want 405", m, status)
		}
	}
	padded := `{` + strings.Repeat(" ", 1<<20) + `"key":` + jsonQuote(up.key) + `,"token":` + tok + `}`
	if status, answer := env.confirmRaw(t, "POST", padded); status != 400 || !strings.Contains(answer, "max_body") {
		t.Errorf("a body over max_body: %d %s, want 400", status, answer)
	}
	for _, k := range []struct{ key, token string }{{up.key, up.token}, {sts.key, sts.token}} {
		for _, v := range keySpellings(k.key) {
			status, answer := env.confirm(t, v, k.token)
			if status != 400 && status != 403 && status != 404 {
				t.Errorf("key %q: %d %s, want 400, 403 or 404", v, status, answer)
			}
		}
	}
	if got := env.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d requests", len(got))
	}
}

// keySpellings are other spellings of a key: encodings, wildcards and
// references OSS or RAM give meaning to, separators, case, paths.
func keySpellings(key string) []string {
	dir, name := key[:strings.LastIndexByte(key, '/')+1], key[strings.LastIndexByte(key, '/')+1:]
	out := []string{
		url.PathEscape(key), url.QueryEscape(key), strings.ReplaceAll(key, ".", "%2E"), strings.ReplaceAll(key, "/", "%2F"),
		dir + "*", dir + "?", dir + "${filename}", dir + "$" + name, key + "*", key + "?", key + "$", key + ";", key + ";x=1",
		dir + name[:len(name)-1] + "*", dir + "?" + name[1:], dir + ";" + name, key + "?x-oss-process=image",
		strings.ToUpper(key), strings.Replace(key, "uploads", "Uploads", 1), " " + key, key + " ", key + "\t",
		"./" + key, "/" + key, key + "/", dir + "./" + name, dir + "../" + key, strings.Replace(key, "/", "//", 1),
		strings.Replace(key, "/", "\\", -1), key + "\x00", key + "\x00.png", strings.Replace(key, "/", "\uff0f", 1),
		key + "\u200b", dir + "\u212a" + name, key[:len(key)-1],
	}
	return out
}

func jsonQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// Objects outside max_size, min_size or allow_types are refused (413,
// 400, 415) and deleted; the app never hears of them.
func TestConfirmEnforcesLimits(t *testing.T) {
	env := newConfirmEnv(t, confirmOpts{confirmOnly: true})
	s := env.stsSession(t, "alice")
	for _, c := range []struct {
		up     cfUpload
		status int
	}{
		{s.put(t, "big.png", "image/png", make([]byte, 2000)), 413},
		{s.put(t, "tiny.png", "image/png", []byte("x")), 400},
		{s.put(t, "notes.txt", "text/plain", []byte("plain text")), 415},
		{s.put(t, "page.html", "text/html; charset=utf-8", []byte("<html></html>")), 415},
		{env.presignPut(t, "alice", "p.png", "image/png", make([]byte, 1500)), 413},
	} {
		if _, ok := env.emu.Object(secBucket, c.up.key); !ok {
			t.Fatalf("%s was not stored", c.up.key)
		}
		if status, body := env.confirm(t, c.up.key, c.up.token); status != c.status {
			t.Errorf("%s: %d %s, want %d", c.up.key, status, body, c.status)
		}
		if _, ok := env.emu.Object(secBucket, c.up.key); ok {
			t.Errorf("%s outside the limits was not deleted", c.up.key)
		}
		// A copy now finds nothing.
		if status, _ := env.confirm(t, c.up.key, c.up.token); status != 404 {
			t.Errorf("%s after its deletion: %d, want 404", c.up.key, status)
		}
	}
	if got := env.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d requests", len(got))
	}
}
