package caddyoss

// Every signing mode fills a user's quota and then answers 429: what each
// reserves, the headers of granted answers, the 429's quota member and
// Retry-After, and what the verified uploads settle.

import (
	"strings"
	"testing"
	"time"
)

// A PostObject policy with a declared size reserves that size, and OSS
// holds the uploader to it; without a size it reserves max_size.
func TestQuotaPostPolicy(t *testing.T) {
	t.Run("declared size", func(t *testing.T) {
		e := newQuotaEnv(t, "", "bytes 1000 per 1h\nuploads 10 per 1h", confirmOpts{})
		before := refusals(signRoutePostPolicy, "bytes")
		a := e.sign(t, qPolicy+"&size=300", "alice", nil).granted(t, "size 300")
		checkRemaining(t, a, 700, 9, qNoHeader)
		if m := policyMax(t, a); m != 300 {
			t.Errorf("the policy allows %d bytes, want the declared 300", m)
		}
		key := a.body["key"].(string)
		if status, body := e.postWith(t, a, randomBytes(301), nil); status != 400 || !strings.Contains(body, "EntityTooLarge") {
			t.Errorf("a file over the declared size: OSS answered %d %s", status, body)
		}
		if _, ok := e.emu.Object(secBucket, key); ok {
			t.Fatal("OSS stored a file over the declared size")
		}
		e.checkUsage(t, "alice", 300, 1, 1)
		upStart := time.Now()
		if status, body := e.postWith(t, a, randomBytes(300), nil); status != 200 {
			t.Fatalf("the declared size: %d %s", status, body)
		}
		upEnd := time.Now()
		e.checkUsage(t, "alice", 300, 1, 0)
		got := e.app.verified()
		if len(got) != 1 {
			t.Fatalf("the app received %d uploads", len(got))
		}
		f := appFields(t, got[0].body)
		if f[quotaIDVar] != a.reservation(t) || f[quotaKeyVar] != "alice" || f["size"] != "300" {
			t.Errorf("the app received %v, want the reservation %s of alice", f, a.reservation(t))
		}

		b := e.sign(t, qPolicy+"&size=700", "alice", nil).granted(t, "size 700")
		checkRemaining(t, b, 0, 8, qNoHeader)
		from, to := secondOf(int64(b.body["expire"].(float64)))
		checkRefused(t, e.sign(t, qPolicy+"&size=2", "alice", nil),
			want429{reason: "bytes", limit: 1000, used: 1000, asked: 2, retryFrom: from, retryTo: to})
		// Without a size: max_size, which needs the settled upload to
		// leave the window too (1h, counted in 60 s slots).
		checkRefused(t, e.sign(t, qPolicy, "alice", nil),
			want429{reason: "bytes", limit: 1000, used: 1000, asked: 1000,
				retryFrom: upStart.Add(time.Hour).Truncate(time.Second), retryTo: upEnd.Add(time.Hour + time.Minute)})
		if n := refusals(signRoutePostPolicy, "bytes") - before; n != 2 {
			t.Errorf("caddy_oss_quota_refusals_total{post_policy,bytes} rose by %v, want 2", n)
		}
		if keys := e.appSawKeys(t); len(keys) != 1 {
			t.Errorf("the app received %v", keys)
		}
	})
	t.Run("no size", func(t *testing.T) {
		e := newQuotaEnv(t, "", "bytes 2000 per 1h", confirmOpts{})
		a1 := e.sign(t, qPolicy, "alice", nil).granted(t, "first")
		checkRemaining(t, a1, 1000, qNoHeader, qNoHeader)
		if m := policyMax(t, a1); m != qMaxSize {
			t.Errorf("the policy allows %d bytes, want max_size", m)
		}
		checkRemaining(t, e.sign(t, qPolicy, "alice", nil).granted(t, "second"), 0, qNoHeader, qNoHeader)
		from, to := secondOf(int64(a1.body["expire"].(float64)))
		checkRefused(t, e.sign(t, qPolicy, "alice", nil),
			want429{reason: "bytes", limit: 2000, used: 2000, asked: 1000, retryFrom: from, retryTo: to})
		e.checkUsage(t, "alice", 2000, 2, 2)
	})
	t.Run("uploads only, size not narrowed", func(t *testing.T) {
		e := newQuotaEnv(t, "", "uploads 1 per 1h", confirmOpts{})
		a := e.sign(t, qPolicy+"&size=300", "alice", nil).granted(t, "first")
		checkRemaining(t, a, qNoHeader, 0, qNoHeader)
		if m := policyMax(t, a); m != qMaxSize {
			t.Errorf("without a bytes limit the policy allows %d bytes, want max_size", m)
		}
		from, to := secondOf(int64(a.body["expire"].(float64)))
		checkRefused(t, e.sign(t, qPolicy+"&size=300", "alice", nil),
			want429{reason: "uploads", limit: 1, used: 1, asked: 1, retryFrom: from, retryTo: to})
	})
}

// A presigned PUT reserves max_size whatever size the client declares.
func TestQuotaPresign(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 2 per 1h\nbytes 3000", confirmOpts{})
	before := refusals(signRoutePresign, "uploads")
	p1 := e.sign(t, qPresign+"&size=10", "alice", nil).granted(t, "first")
	checkRemaining(t, p1, 2000, 1, qNoHeader)
	p2 := e.sign(t, qPresign, "alice", nil).granted(t, "second")
	checkRemaining(t, p2, 1000, 0, qNoHeader)
	expiry := func(a signAnswer) (time.Time, time.Time) {
		at, err := time.Parse(time.RFC3339, a.body["expires"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return secondOf(at.Unix())
	}
	from, to := expiry(p1)
	checkRefused(t, e.sign(t, qPresign, "alice", nil), want429{reason: "uploads", limit: 2, used: 2, asked: 1, retryFrom: from, retryTo: to})

	if up := e.presignPutURL(t, p1.body, randomBytes(300)); up.status != 200 {
		t.Fatalf("upload: %d %s", up.status, up.answer)
	}
	e.checkUsage(t, "alice", 1300, 2, 1)
	// The settled upload counts for the window: the next room is p2's.
	from, to = expiry(p2)
	checkRefused(t, e.sign(t, qPresign, "alice", nil), want429{reason: "uploads", limit: 2, used: 2, asked: 1, retryFrom: from, retryTo: to})
	if n := refusals(signRoutePresign, "uploads") - before; n != 2 {
		t.Errorf("caddy_oss_quota_refusals_total{presign,uploads} rose by %v, want 2", n)
	}
}

// Uppy's params route reserves as the post-policy route does.
func TestQuotaUppyParams(t *testing.T) {
	e := newQuotaEnv(t, "", "uploads 1 per 1h", confirmOpts{})
	a := e.sign(t, qParams+"&size=300", "alice", nil).granted(t, "params")
	checkRemaining(t, a, qNoHeader, 0, qNoHeader)
	upStart := time.Now()
	if status, body := e.postWith(t, a, randomBytes(500), nil); status != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("upload: %d %s", status, body)
	}
	upEnd := time.Now()
	e.checkUsage(t, "alice", 500, 1, 0)
	checkRefused(t, e.sign(t, qParams, "alice", nil), want429{reason: "uploads", limit: 1, used: 1, asked: 1,
		retryFrom: upStart.Add(time.Hour).Truncate(time.Second), retryTo: upEnd.Add(time.Hour + time.Minute)})
	if f := appFields(t, e.app.verified()[0].body); f[quotaIDVar] != a.reservation(t) || f[quotaKeyVar] != "alice" {
		t.Errorf("the app received %v", f)
	}
}

// An Uppy multipart upload reserves max_size for an hour at its creation;
// its completion's callback settles the reservation sealed in its upload
// id, which no altered id can name.
func TestQuotaUppyMultipart(t *testing.T) {
	e := newQuotaEnv(t, "", "bytes 2000 per 1h", confirmOpts{})
	c1 := e.create(t, "alice").granted(t, "create 1")
	checkRemaining(t, c1, 1000, qNoHeader, qNoHeader)
	c2 := e.create(t, "alice").granted(t, "create 2")
	checkRemaining(t, c2, 0, qNoHeader, qNoHeader)
	checkRefused(t, e.create(t, "alice"), want429{reason: "bytes", limit: 2000, used: 2000, asked: 1000,
		retryFrom: c1.before.Add(time.Hour).Truncate(time.Second), retryTo: c1.after.Add(time.Hour + time.Second)})

	sealed1, sealed2 := c1.body["uploadId"].(string), c2.body["uploadId"].(string)
	split := func(s string) (ossID, rid, mac string) {
		i := strings.LastIndexByte(s, '.')
		head, mac := s[:max(i, 0)], s[i+1:]
		ossID, rid, ok := strings.Cut(head, "~")
		if !ok || rid == "" {
			t.Fatalf("upload id %q seals no reservation", s)
		}
		return ossID, rid, mac
	}
	oss1, rid1, mac1 := split(sealed1)
	_, rid2, _ := split(sealed2)
	ridParts := strings.Split(rid1, ".")
	bigger := append([]string(nil), ridParts...)
	bigger[len(bigger)-2] = "0" // a reservation of no bytes
	up, parts := e.multipartPart(t, c1, "alice", randomBytes(200))
	for _, v := range []string{
		oss1 + "." + mac1, oss1 + "~" + rid2 + "." + mac1, oss1 + "~" + rid1 + "0." + mac1,
		oss1 + "~" + strings.ToUpper(rid1) + "." + mac1, oss1 + "~" + rid1 + "~" + rid2 + "." + mac1,
		oss1 + "~none." + mac1, oss1 + "~" + strings.Join(bigger, ".") + "." + mac1, oss1 + "~~" + rid1 + "." + mac1,
		sealed2,
	} {
		if status, body := e.complete(t, up, v, "alice", parts); status != 403 {
			t.Errorf("complete with upload id %q: %d %s, want 403", v, status, body)
		}
	}
	if _, ok := e.emu.Object(secBucket, up.Key); ok || len(e.app.all()) != 0 {
		t.Fatal("an altered upload id completed the upload")
	}
	e.checkUsage(t, "alice", 2000, 2, 2)
	if status, body := e.complete(t, up, sealed1, "alice", parts); status != 200 {
		t.Fatalf("complete: %d %s", status, body)
	}
	e.checkUsage(t, "alice", 1200, 2, 1)
	if f := appFields(t, e.app.verified()[0].body); f[quotaIDVar] != rid1 || f[quotaKeyVar] != "alice" || f["size"] != "200" {
		t.Errorf("the app received %v, want the reservation %s", f, rid1)
	}
	// 200 of the 1000 more needed free up when c2's reservation ends.
	checkRefused(t, e.create(t, "alice"), want429{reason: "bytes", limit: 2000, used: 1200, asked: 1000,
		retryFrom: c2.before.Add(time.Hour).Truncate(time.Second), retryTo: c2.after.Add(time.Hour + time.Second)})
}

// Every STS answer reserves max_size until the credentials expire, even
// when the broker serves the same credentials again; an answer is refused
// when less than max_size is left.
func TestQuotaSTS(t *testing.T) {
	e := newQuotaEnv(t, "", "bytes 3000 per 1h", confirmOpts{})
	before := refusals(signRouteSTS, "bytes")
	var answers []signAnswer
	ids := map[string]bool{}
	for i, left := range []int64{2000, 1000, 0} {
		a := e.sign(t, qSTS, "alice", nil).granted(t, "sts")
		checkRemaining(t, a, left, qNoHeader, qNoHeader)
		answers = append(answers, a)
		ids[a.reservation(t)] = true
		if len(ids) != i+1 {
			t.Fatalf("STS answer %d repeats a reservation id", i+1)
		}
	}
	expiry := func(a signAnswer) (time.Time, time.Time) {
		at, err := time.Parse(time.RFC3339, a.body["Expiration"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return secondOf(at.Unix())
	}
	from, to := expiry(answers[0])
	checkRefused(t, e.sign(t, qSTS, "alice", nil), want429{reason: "bytes", limit: 3000, used: 3000, asked: 1000, retryFrom: from, retryTo: to})

	s := e.stsFrom(t, answers[0])
	if err := s.putCallback(s.prefix+"s.png", randomBytes(100), ""); err != nil {
		t.Fatalf("STS upload: %v", err)
	}
	e.checkUsage(t, "alice", 2100, 3, 2)
	if f := appFields(t, e.app.verified()[0].body); f[quotaIDVar] != answers[0].reservation(t) || f["size"] != "100" {
		t.Errorf("the app received %v", f)
	}
	// 900 left is less than max_size: refused until 100 more free up.
	from, to = expiry(answers[1])
	checkRefused(t, e.sign(t, qSTS, "alice", nil), want429{reason: "bytes", limit: 3000, used: 2100, asked: 1000, retryFrom: from, retryTo: to})
	if n := refusals(signRouteSTS, "bytes") - before; n != 2 {
		t.Errorf("caddy_oss_quota_refusals_total{sts,bytes} rose by %v, want 2", n)
	}
}

// The pending limit counts signed uploads not yet verified: a verified
// upload frees its pending room at once, not at its signature's expiry.
func TestQuotaPending(t *testing.T) {
	e := newQuotaEnv(t, "", "pending 2", confirmOpts{})
	before := refusals(signRoutePresign, "pending")
	p1 := e.sign(t, qPresign, "alice", nil).granted(t, "first")
	checkRemaining(t, p1, qNoHeader, qNoHeader, 1)
	checkRemaining(t, e.sign(t, qPolicy, "alice", nil).granted(t, "second"), qNoHeader, qNoHeader, 0)
	at, err := time.Parse(time.RFC3339, p1.body["expires"].(string))
	if err != nil {
		t.Fatal(err)
	}
	from, to := secondOf(at.Unix())
	checkRefused(t, e.sign(t, qPresign, "alice", nil), want429{reason: "pending", limit: 2, used: 2, asked: 1, retryFrom: from, retryTo: to})
	if n := refusals(signRoutePresign, "pending") - before; n != 1 {
		t.Errorf("caddy_oss_quota_refusals_total{presign,pending} rose by %v, want 1", n)
	}
	if up := e.presignPutURL(t, p1.body, randomBytes(10)); up.status != 200 {
		t.Fatalf("upload: %d %s", up.status, up.answer)
	}
	checkRemaining(t, e.sign(t, qPresign, "alice", nil).granted(t, "after the upload"), qNoHeader, qNoHeader, 0)
}
