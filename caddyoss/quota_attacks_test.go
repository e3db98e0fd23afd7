package caddyoss

// Attacks on the quota: generated variants of the reservation variables
// an uploader can reach (the callback variables an STS uploader writes, a
// relayed callback, a confirm token, the form fields of a policy, a
// presigned URL), another user's key, quota keys that expand to nothing
// or to characters with meaning, and a second site. None moves a charge
// to another reservation or key; the app hears of nothing refused.

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/callback"
)

// quotaVarVariants are changes of the quota variables issued with an
// upload (vars keyed as given, with prefix "x:" for callback variables or
// "" for a confirm token), given other reservations and keys to move the
// charge to.
func quotaVarVariants(vars map[string]string, prefix string, otherIDs ...string) []map[string]string {
	id, key := prefix+quotaIDVar, prefix+quotaKeyVar
	rid := vars[id]
	parts := strings.Split(rid, ".")
	respell := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, ".")
	}
	var out []map[string]string
	with := func(k, v string, del bool) {
		m := map[string]string{}
		for n, x := range vars {
			m[n] = x
		}
		if del {
			delete(m, k)
		} else {
			m[k] = v
		}
		out = append(out, m)
	}
	ids := append([]string{quotaNoReservation, "", rid + "0", strings.ToUpper(rid), " " + rid,
		respell(len(parts)-2, "0"), respell(len(parts)-2, "zzzzzz"), respell(len(parts)-1, "9"), respell(0, "w000000000000")}, otherIDs...)
	for _, v := range ids {
		with(id, v, false)
	}
	for _, v := range []string{"bob", "", "alice ", "Alice", "alice/", "*", "uploads/alice/"} {
		with(key, v, false)
	}
	with(id, "", true)
	with(key, "", true)
	return out
}

// The reservation variables are covered by the binding's MAC wherever an
// uploader can change them: the app sees only the genuine uploads, and
// each is charged once, to its own reservation.
func TestQuotaVarsCannotBeChanged(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 10 per 1h", confirmOpts{})
	a := e.sign(t, qSTS, "alice", nil).granted(t, "alice's sts")
	bobID := e.sign(t, qSTS, "bob", nil).granted(t, "bob's sts").reservation(t)
	p := e.sign(t, qPolicy, "alice", nil).granted(t, "alice's policy")
	s := e.stsFrom(t, a)

	// The callback variables an STS uploader writes itself: OSS signs the
	// callback, the binding refuses it.
	raw, _ := base64.StdEncoding.DecodeString(a.body["CallbackHeaders"].(map[string]any)["x-oss-callback-var"].(string))
	var vars map[string]string
	if err := json.Unmarshal(raw, &vars); err != nil || vars["x:"+quotaIDVar] != a.reservation(t) || vars["x:"+quotaKeyVar] != "alice" {
		t.Fatalf("the STS answer's callback variables: %s", raw)
	}
	variants := quotaVarVariants(vars, "x:", bobID, p.reservation(t))
	for i, v := range variants {
		b, _ := json.Marshal(v)
		key := fmt.Sprintf("%sv-%d.png", s.prefix, i)
		if err := s.putCallback(key, randomBytes(10), base64.StdEncoding.EncodeToString(b)); !isCallbackFailed(err, 403) {
			t.Errorf("variables %s: %v, want 203 CallbackFailed (403)", b, err)
		}
	}
	if got := e.app.all(); len(got) != 0 {
		t.Fatalf("the app received %d requests from changed variables", len(got))
	}
	e.checkUsage(t, "alice", 2*qMaxSize, 2, 2)
	e.checkUsage(t, "bob", qMaxSize, 1, 1)

	// The genuine variables; then OSS's callback relayed with the quota
	// fields changed in its body.
	genuine := s.prefix + "genuine.png"
	if err := s.putCallback(genuine, randomBytes(10), ""); err != nil {
		t.Fatal(err)
	}
	cb := e.lastCallback(t, genuine)
	for _, c := range []struct{ old, new string }{
		{quotaIDVar + "=" + url.QueryEscape(a.reservation(t)), quotaIDVar + "=" + url.QueryEscape(bobID)},
		{quotaIDVar + "=" + url.QueryEscape(a.reservation(t)), quotaIDVar + "=" + quotaNoReservation},
		{quotaKeyVar + "=alice", quotaKeyVar + "=bob"},
		{"&" + quotaKeyVar + "=alice", ""},
	} {
		body := strings.Replace(cb.Body, c.old, c.new, 1)
		if body == cb.Body {
			t.Fatalf("%q is not in the callback body %s", c.old, cb.Body)
		}
		// With OSS's Content-MD5 the body no longer matches it; with
		// the body's own, OSS's signature does not cover it.
		if status, _ := resend(t, cb, cfCbPath, body, nil); status != 400 {
			t.Errorf("a relayed callback with %q: %d, want 400", c.new, status)
		}
		sum := md5.Sum([]byte(body))
		if status, _ := resend(t, cb, cfCbPath, body, func(h http.Header) {
			h.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
		}); status != 403 {
			t.Errorf("a relayed callback with %q and its Content-MD5: %d, want 403", c.new, status)
		}
	}
	e.checkUsage(t, "alice", qMaxSize+10, 2, 1)
	e.checkUsage(t, "bob", qMaxSize, 1, 1)

	// A confirm token with its variables changed.
	confirmed := s.put(t, "confirmed.png", "image/png", randomBytes(10))
	b, tokVars, err := callback.ParseConfirmToken(confirmed.token)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range quotaVarVariants(tokVars, "", bobID, p.reservation(t)) {
		if status, body := e.confirm(t, confirmed.key, callback.ConfirmToken(b.String(), v)); status != 403 {
			t.Errorf("a confirm token with %v: %d %s, want 403", v, status, body)
		}
	}
	if status, body := e.confirm(t, confirmed.key, confirmed.token); status != 200 {
		t.Fatalf("the genuine confirm: %d %s", status, body)
	}
	// STS credentials' later uploads are charged on their own.
	e.checkUsage(t, "alice", qMaxSize+20, 3, 1)

	// A policy's reservation fields: OSS holds the form to them.
	for _, f := range []struct{ name, value string }{
		{"x:" + quotaIDVar, bobID}, {"x:" + quotaIDVar, quotaNoReservation}, {"x:" + quotaKeyVar, "bob"}, {"x:" + quotaKeyVar, ""},
	} {
		status, body := e.postWith(t, p, randomBytes(10), func(m map[string]string) { m[f.name] = f.value })
		if status != 403 {
			t.Errorf("a form with %s=%q: OSS answered %d %s", f.name, f.value, status, body)
		}
	}
	// A presigned URL's callback variables: its signature covers them.
	ps := e.sign(t, qPresign, "alice", nil).granted(t, "presign")
	u, _ := url.Parse(ps.body["url"].(string))
	cbv, _ := base64.StdEncoding.DecodeString(u.Query().Get("callback-var"))
	var pvars map[string]string
	if err := json.Unmarshal(cbv, &pvars); err != nil {
		t.Fatal(err)
	}
	for _, v := range quotaVarVariants(pvars, "x:", bobID)[:4] {
		q := u.Query()
		q.Set("callback-var", b64JSON(v))
		changed := *u
		changed.RawQuery = q.Encode()
		ps.body["url"] = changed.String()
		if up := e.presignPutURL(t, ps.body, randomBytes(10)); up.status != 403 {
			t.Errorf("a presigned URL with callback variables %v: OSS answered %d %s", v, up.status, up.answer)
		}
	}
	e.deliveredOnce(t, genuine, confirmed.key)
	e.checkUsage(t, "bob", qMaxSize, 1, 1)
}

// Whose quota a signing counts against is the signing request's key:
// another user's header gets that user's quota, and completing another
// user's multipart upload is refused.
func TestQuotaKeyIsTheSigningUsers(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 2 per 1h", confirmOpts{})
	c := e.create(t, "alice").granted(t, "alice's multipart")
	if up := e.postObject(t, "alice", "a.png", "image/png", randomBytes(10)); up.status != 200 {
		t.Fatalf("alice's upload: %d %s", up.status, up.answer)
	}
	checkRefused(t, e.sign(t, qPolicy, "alice", nil), want429{reason: "uploads", limit: 2, used: 2, asked: 1,
		retryFrom: c.before.Add(time.Hour).Truncate(time.Second), retryTo: c.after.Add(time.Hour + time.Second)})
	bc := e.create(t, "bob").granted(t, "bob's multipart")
	checkRemaining(t, bc, qNoHeader, 1, qNoHeader)
	mp, parts := e.multipartPart(t, bc, "bob", randomBytes(20))
	if status, body := e.complete(t, mp, bc.body["uploadId"].(string), "alice", parts); status != 403 {
		t.Errorf("alice completing bob's upload: %d %s", status, body)
	}
	e.checkUsage(t, "alice", 10+qMaxSize, 2, 1)
	e.checkUsage(t, "bob", qMaxSize, 1, 1)
	if status, body := e.complete(t, mp, bc.body["uploadId"].(string), "bob", parts); status != 200 {
		t.Fatalf("bob's completion: %d %s", status, body)
	}
	e.checkUsage(t, "bob", 20, 1, 0)
	for _, r := range e.app.verified() {
		f := appFields(t, r.body)
		if want := f["user"]; f[quotaKeyVar] != want {
			t.Errorf("%s's upload was charged to %q", want, f[quotaKeyVar])
		}
	}
}

// A quota key that expands to nothing, to characters with meaning, to
// control characters or to more than 256 bytes refuses the request (403)
// on every signing route before anything is signed or reserved.
func TestQuotaKeyPlaceholders(t *testing.T) {
	e := newQuotaEnv(t, "{http.request.uri.query.qk}", "uploads 100", confirmOpts{})
	routes := []struct {
		target string
		post   bool
	}{{qPolicy + "&", false}, {qPresign + "&", false}, {qSTS + "?", false}, {qParams + "&", false}, {qCreate + "?", true}}
	ask := func(i int, qk string, present bool) signAnswer {
		target := routes[i].target
		if present {
			target += "qk=" + url.QueryEscape(qk)
		}
		var body any
		if routes[i].post {
			body = map[string]any{"filename": "m.png", "type": "image/png"}
		}
		return e.sign(t, target, "alice", body)
	}
	bad := []string{"", "*", "a*", "a?b", "?", "$x", "${x:user}", "a$", "a\tb", "a\x00b", "\x01", "a\x1f", "a\x7f", "a\u0080", "a\u0085b", "\u009f", "a\nb", "a\rb", strings.Repeat("k", 257)}
	for i := range routes {
		if a := ask(i, "", false); a.status != 403 || a.signedSomething() {
			t.Errorf("%s without a quota key: %d %s", routes[i].target, a.status, a.raw)
		}
		for _, qk := range bad {
			a := ask(i, qk, true)
			if a.status != 403 || a.signedSomething() || !strings.Contains(a.body["error"].(string), "quota key") {
				t.Errorf("%s with the quota key %q: %d %s", routes[i].target, qk, a.status, a.raw)
			}
			for name := range a.header {
				if strings.HasPrefix(name, "X-Quota-") {
					t.Errorf("%s with the quota key %q answered %s", routes[i].target, qk, name)
				}
			}
		}
		for _, qk := range []string{"alice", strings.Repeat("k", 256), "ünïcode key"} {
			a := ask(i, qk, true).granted(t, routes[i].target+" "+qk)
			if _, multipart := a.body["uploadId"]; !multipart && a.vars(t)[quotaKeyVar] != qk {
				t.Errorf("%s: the quota key issued is %q, want %q", routes[i].target, a.vars(t)[quotaKeyVar], qk)
			}
		}
	}
	e.checkUsage(t, "alice", 5*qMaxSize, 5, 5)
	e.checkUsage(t, strings.Repeat("k", 256), 5*qMaxSize, 5, 5)

	// An unknown placeholder (no authentication ran) refuses too.
	e = newQuotaEnv(t, "{http.auth.user.id}", "uploads 100", confirmOpts{})
	for i := range routes {
		if a := ask(i, "", false); a.status != 403 || a.signedSomething() {
			t.Errorf("%s with an unknown placeholder: %d %s", routes[i].target, a.status, a.raw)
		}
	}
}

// Another site on the same Caddy, with its own handler id, keeps its own
// ledger: a user who used up one site's quota still has the other's.
func TestQuotaSecondSite(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 1 per 1h", confirmOpts{})
	other := strings.Replace(e.config, "http://localhost:9080 {", "http://localhost:9081 {", 1)
	other = strings.Replace(other, "url http://localhost:9080"+cfCbPath, "url http://localhost:9081"+cfCbPath, 1)
	other = other[strings.Index(other, "http://localhost:9081 {"):]
	e.tester.InitServer(e.config+"\n"+other, "caddyfile")
	otherID := callback.HandlerID(secBucket, cfPrefix, cfCbPath, "http://localhost:9081"+cfCbPath)
	if otherID == e.handlerID || ledgerOf(t, otherID) == e.ledger(t) {
		t.Fatal("the two sites share a ledger")
	}
	for _, site := range []string{"http://localhost:9080", "http://localhost:9081"} {
		a := e.signAt(t, site+qPolicy, "alice", nil).granted(t, site)
		checkRemaining(t, a, qNoHeader, 0, qNoHeader)
		from, to := secondOf(int64(a.body["expire"].(float64)))
		checkRefused(t, e.signAt(t, site+qPolicy, "alice", nil), want429{reason: "uploads", limit: 1, used: 1, asked: 1, retryFrom: from, retryTo: to})
	}
	for _, id := range []string{e.handlerID, otherID} {
		if u, err := ledgerOf(t, id).Usage(t.Context(), "alice"); err != nil || u.Uploads != 1 || u.Pending != 1 {
			t.Errorf("handler %s: usage %+v %v, want alice's one reservation", id, u, err)
		}
	}
}
