package caddyoss

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestUppyLimits: what the routes refuse, each time with a JSON error,
// nothing stored, nothing left unfinished and nothing sent to the app.
func TestUppyLimits(t *testing.T) {
	env := newUppyEnv(t, "v4")

	// Over max_size at complete: aborted, 413.
	up := env.create(t, "alice", "big.bin", "application/octet-stream")
	var parts []map[string]any
	for n := 1; n <= 3; n++ {
		parts = append(parts, map[string]any{"PartNumber": n, "ETag": env.putPart(t, "alice", up, n, randomBytes(partSize))})
	}
	if status, body := env.call(t, "POST", up.path("/complete"), "alice", map[string]any{"parts": parts}, nil); status != http.StatusRequestEntityTooLarge {
		t.Errorf("complete over max_size: %d %s", status, body)
	}
	env.assertGone(t, up)
	// Claiming fewer parts does not help once aborted.
	if status, _ := env.call(t, "POST", up.path("/complete"), "alice", map[string]any{"parts": parts[:2]}, nil); status != http.StatusBadRequest && status != http.StatusNotFound {
		t.Errorf("complete after abort: %d", status)
	}

	// Under min_size.
	small := env.create(t, "alice", "tiny.bin", "application/octet-stream")
	etag := env.putPart(t, "alice", small, 1, []byte{1})
	if status, body := env.call(t, "POST", small.path("/complete"), "alice", map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": etag}}}, nil); status != http.StatusBadRequest {
		t.Errorf("complete under min_size: %d %s", status, body)
	}
	env.assertGone(t, small)

	// Types outside allow_types at create.
	for _, typ := range []string{"text/html", "application/pdf", "image", "", "Text/HTML; charset=utf-8"} {
		status, body := env.call(t, "POST", "/multipart", "alice", map[string]any{"filename": "x.html", "type": typ}, nil)
		if status != http.StatusBadRequest && status != http.StatusUnsupportedMediaType {
			t.Errorf("create type %q: %d %s", typ, status, body)
		}
	}
	// Bad bodies.
	for _, raw := range []string{"", "{", `{"filename": 1}`, `{"filename":"a"} {}`, "[]", strings.Repeat(" ", maxUppyBody+1) + "{}"} {
		req, _ := http.NewRequest("POST", "http://localhost:9080/oss/uppy/s3/multipart", strings.NewReader(raw))
		req.Header.Set("X-User", "alice")
		resp, err := env.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("create with body %.20q: %d", raw, resp.StatusCode)
		}
	}

	// Part numbers and part lists.
	live := env.create(t, "alice", "live.bin", "application/octet-stream")
	for _, n := range []string{"0", "10001", "-1", "abc", "1.5", "1e3"} {
		if status, body := env.call(t, "GET", "/multipart/"+url.PathEscape(live.UploadID)+"/"+n+"?key="+url.QueryEscape(live.Key), "alice", nil, nil); status != http.StatusBadRequest {
			t.Errorf("sign part %q: %d %s", n, status, body)
		}
	}
	e1 := env.putPart(t, "alice", live, 1, randomBytes(partSize))
	e2 := env.putPart(t, "alice", live, 2, randomBytes(10))
	for name, ps := range map[string][]map[string]any{
		"none":         {},
		"zero":         {{"PartNumber": 0, "ETag": e1}},
		"too high":     {{"PartNumber": 10001, "ETag": e1}},
		"twice":        {{"PartNumber": 1, "ETag": e1}, {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}},
		"no etag":      {{"PartNumber": 1}, {"PartNumber": 2, "ETag": e2}},
		"wrong etag":   {{"PartNumber": 1, "ETag": e2}, {"PartNumber": 2, "ETag": e2}},
		"not uploaded": {{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}},
		"too many":     manyParts(maxPartNumber + 1),
	} {
		if status, body := env.call(t, "POST", live.path("/complete"), "alice", map[string]any{"parts": ps}, nil); status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
			t.Errorf("complete with %s: %d %s", name, status, body)
		}
	}
	// A part below 100 KB before the last: OSS's EntityTooSmall, as a 400.
	odd := env.create(t, "alice", "odd.bin", "application/octet-stream")
	o1 := env.putPart(t, "alice", odd, 1, randomBytes(10))
	o2 := env.putPart(t, "alice", odd, 2, randomBytes(10))
	if status, body := env.call(t, "POST", odd.path("/complete"), "alice", map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": o1}, {"PartNumber": 2, "ETag": o2}}}, nil); status != http.StatusBadRequest || strings.Contains(body, "RequestId") {
		t.Errorf("complete with a small first part: %d %s", status, body)
	}
	// The live upload is still whole: the refused completes changed nothing.
	var listed []uppyPart
	if status, _ := env.call(t, "GET", live.path(""), "alice", nil, &listed); status != http.StatusOK || len(listed) != 2 {
		t.Errorf("live upload after refusals: %d, %d parts", status, len(listed))
	}
	// Methods.
	for _, m := range []struct{ method, path string }{
		{"POST", "/params"}, {"GET", "/multipart"}, {"PUT", live.path("")}, {"POST", live.path("")},
		{"GET", live.path("/complete")}, {"DELETE", live.path("/1")}, {"POST", live.path("/batch")},
	} {
		if status, body := env.call(t, m.method, m.path, "alice", nil, nil); status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d %s", m.method, m.path, status, body)
		}
	}
	for _, p := range []string{"/nope", "/sts", "/multipart/", "/multipart/x/1/2", "/multipart//1", "/multipart/x/"} {
		if status, body := env.call(t, "GET", p, "alice", nil, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", p, status, body)
		}
	}
	if n := len(env.app.all()); n != 0 {
		t.Errorf("the app received %d requests: %+v", n, env.app.all())
	}
}

// TestUppyForeignUploads: another user, or a forged key or upload id,
// cannot list, sign, complete or abort an upload. Every variant gets a
// JSON error, the upload stays whole and the app sees nothing.
func TestUppyForeignUploads(t *testing.T) {
	env := newUppyEnv(t, "v4")
	alice := env.create(t, "alice", "a.png", "image/png")
	a1 := env.putPart(t, "alice", alice, 1, randomBytes(partSize))
	mallory := env.create(t, "mallory", "m.png", "image/png")
	ossID, mac, _ := strings.Cut(alice.UploadID, ".")
	mOssID, mMac, _ := strings.Cut(mallory.UploadID, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}

	type target struct{ name, key, id string }
	targets := []target{
		{"alice's upload as mallory", alice.Key, alice.UploadID},
		{"alice's key, mallory's id", alice.Key, mallory.UploadID},
		{"mallory's key, alice's id", mallory.Key, alice.UploadID},
		{"mallory's key, alice's oss id with mallory's seal", mallory.Key, ossID + "." + mMac},
		{"mallory's key, mallory's oss id with alice's seal", mallory.Key, mOssID + "." + mac},
		{"raw oss id", mallory.Key, mOssID},
		{"flipped seal", mallory.Key, mOssID + "." + flip(mMac)},
		{"empty seal", mallory.Key, mOssID + "."},
		{"seal only", mallory.Key, "." + mMac},
		{"upper-cased seal", mallory.Key, mOssID + "." + strings.ToUpper(mMac)},
		{"no key", "", mallory.UploadID},
	}
	// Spellings of alice's key that a prefix check on text might let by.
	for _, k := range []string{
		"uploads/mallory/../alice/" + strings.TrimPrefix(alice.Key, "uploads/alice/"),
		"uploads/mallory/./" + strings.TrimPrefix(alice.Key, "uploads/"),
		"/" + alice.Key, "Uploads/alice/" + strings.TrimPrefix(alice.Key, "uploads/alice/"),
		"uploads/mallory//../../" + alice.Key, "uploads/mallory\\..\\alice",
		"uploads/mallory", "uploads/", "uploads/mallory/",
		"uploads/mallory/%2e%2e/alice/x", "uploads/mallory/\x00/x",
	} {
		targets = append(targets, target{"key " + k, k, mallory.UploadID}, target{"key " + k + " with alice's id", k, alice.UploadID})
	}
	etagJSON := map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": a1}}}
	for _, tg := range targets {
		query := url.Values{}
		if tg.key != "" {
			query.Set("key", tg.key)
		}
		q := "?" + query.Encode()
		query.Set("partNumbers", "1,2")
		base := "/multipart/" + url.PathEscape(tg.id)
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", base + q, nil},
			{"GET", base + "/1" + q, nil},
			{"GET", base + "/batch?" + query.Encode(), nil},
			{"POST", base + "/complete" + q, etagJSON},
			{"DELETE", base + q, nil},
		} {
			status, body := env.call(t, req.method, req.path, "mallory", req.body, nil)
			if status != http.StatusForbidden && status != http.StatusBadRequest {
				t.Errorf("%s: %s %s: %d %s", tg.name, req.method, req.path, status, body)
			}
			if strings.Contains(body, "http") {
				t.Errorf("%s: %s %s: the answer carries a URL: %s", tg.name, req.method, req.path, body)
			}
		}
	}
	// No user at all: the prefix cannot be expanded.
	if status, _ := env.call(t, "GET", alice.path(""), "", nil, nil); status != http.StatusForbidden {
		t.Errorf("no user: %d", status)
	}
	// Alice's upload is whole and hers to finish.
	var listed []uppyPart
	if status, _ := env.call(t, "GET", alice.path(""), "alice", nil, &listed); status != http.StatusOK || len(listed) != 1 || listed[0].ETag != a1 {
		t.Fatalf("alice's upload after the attempts: %d %+v", status, listed)
	}
	if status, body := env.call(t, "POST", alice.path("/complete"), "alice", etagJSON, nil); status != http.StatusOK {
		t.Fatalf("alice completes: %d %s", status, body)
	}
	if got := env.app.all(); len(got) != 1 || got[0].form().Get("user") != "alice" {
		t.Errorf("the app received %+v, want alice's one callback", got)
	}
	// Alice can abort her own upload; then it is gone.
	more := env.create(t, "alice", "b.png", "image/png")
	if status, body := env.call(t, "DELETE", more.path(""), "alice", nil, nil); status != http.StatusOK || strings.TrimSpace(body) != "{}" {
		t.Errorf("abort: %d %s", status, body)
	}
	env.assertGone(t, more)
	if status, _ := env.call(t, "DELETE", more.path(""), "alice", nil, nil); status != http.StatusNotFound {
		t.Errorf("second abort: %d", status)
	}
}
