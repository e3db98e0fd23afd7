package caddyoss

// The confirm route through a running Caddy and ossemu: every upload
// mode confirmed once reaches the app once, with OSS's facts; copies,
// concurrent confirms and the callback of the same upload, in either
// order, never reach it again.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/caddy-oss/caddy-oss/internal/doctor"
)

// uppyMultipart uploads data as user through Uppy's multipart routes and
// returns the complete answer.
func (e *confirmEnv) uppyMultipart(t *testing.T, user, name, typ string, data []byte) (cfUpload, map[string]any) {
	t.Helper()
	u := &uppyEnv{secEnv: e.secEnv}
	up := u.create(t, user, name, typ)
	etag := u.putPart(t, user, up, 1, data)
	var done map[string]any
	status, body := u.call(t, "POST", up.path("/complete"), user,
		map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": etag}}}, &done)
	if status != 200 {
		t.Fatalf("complete: %d %s", status, body)
	}
	return cfUpload{key: up.Key, token: confirmOf(t, done["confirm"]).Token, status: 200}, done
}

// uppyParams uploads data as user through Uppy's single-upload route
// (s3/params, a PostObject form).
func (e *confirmEnv) uppyParams(t *testing.T, user, name, typ string, data []byte) cfUpload {
	t.Helper()
	u := &uppyEnv{secEnv: e.secEnv}
	var p map[string]any
	q := url.Values{"filename": {name}, "type": {typ}}
	if status, body := u.call(t, "GET", "/params?"+q.Encode(), user, nil, &p); status != 200 {
		t.Fatalf("params: %d %s", status, body)
	}
	var fields [][2]string
	for k, v := range p["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	up := cfUpload{key: p["fields"].(map[string]any)["key"].(string), token: confirmOf(t, p["confirm"]).Token, signing: p}
	up.status, up.answer = e.postForm(t, p["url"].(string), fields, typ, data)
	return up
}

// With confirm_only, no signing answer asks OSS for a callback: every
// mode's upload reaches the app through its confirm, once, with what OSS
// stores; the uploader gets the app's answer, and a copy of the confirm
// {"status":"duplicate"}.
func TestConfirmModes(t *testing.T) {
	for _, bodyJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", bodyJSON), func(t *testing.T) {
			env := newConfirmEnv(t, confirmOpts{confirmOnly: true, json: bodyJSON})
			var ups []cfUpload
			post := env.postObject(t, "alice", "a.png", "image/png", []byte("png bytes"))
			if _, asked := post.signing["callback"]; asked {
				t.Errorf("confirm_only: the post-policy answer asks OSS for a callback: %v", post.signing)
			}
			for name := range post.signing["fields"].(map[string]any) {
				if name == "callback" || strings.HasPrefix(name, "x:") {
					t.Errorf("confirm_only: the form carries %s", name)
				}
			}
			ups = append(ups, post)
			put := env.presignPut(t, "alice", "b.pdf", "application/pdf", []byte("%PDF-1.7 bytes"))
			if strings.Contains(put.signing["url"].(string), "callback") {
				t.Errorf("confirm_only: the presigned URL asks OSS for a callback: %s", put.signing["url"])
			}
			ups = append(ups, put)
			s := env.stsSession(t, "bob")
			if _, asked := s.answer["Callback"]; asked {
				t.Errorf("confirm_only: the STS answer carries a callback: %v", s.answer)
			}
			ups = append(ups, s.put(t, "c.png", "image/png", []byte("sts bytes")), s.put(t, "d/e.png", "image/png", []byte("more sts bytes")))
			mp, done := env.uppyMultipart(t, "carol", "f.png", "image/png", []byte("multipart bytes"))
			if _, asked := done["callback"]; asked {
				t.Errorf("confirm_only: the complete answer carries a callback answer: %v", done)
			}
			ups = append(ups, mp, env.uppyParams(t, "carol", "g.png", "image/png", []byte("uppy form bytes")))
			users := []string{"alice", "alice", "bob", "bob", "carol", "carol"}

			if got := env.app.all(); len(got) != 0 {
				t.Fatalf("before any confirm the app received %d requests", len(got))
			}
			var keys []string
			for i, up := range ups {
				if up.status != 200 && up.status != 201 && up.status != 204 {
					t.Fatalf("upload %d (%s): OSS answered %d %s", i, up.key, up.status, up.answer)
				}
				status, body := env.confirm(t, up.key, up.token)
				if status != 200 || body != `{"ok":true}` {
					t.Errorf("confirm %s: %d %s, want the app's answer", up.key, status, body)
				}
				keys = append(keys, up.key)
			}
			byKey := env.deliveredOnce(t, keys...)
			for i, up := range ups {
				env.checkDelivered(t, byKey[up.key], up.key, up.token, users[i])
			}
			// Copies: answered by the event's state, never delivered again.
			for _, up := range ups {
				if status, body := env.confirm(t, up.key, up.token); status != 200 || body != `{"status":"duplicate"}` {
					t.Errorf("copy of the confirm of %s: %d %s", up.key, status, body)
				}
			}
			env.deliveredOnce(t, keys...)
		})
	}
}

// Concurrent copies of one confirm, on one instance: one reaches the app;
// each is answered 200 (the app's answer, a duplicate, or queued).
func TestConfirmConcurrent(t *testing.T) {
	env := newConfirmEnv(t, confirmOpts{confirmOnly: true})
	up := env.postObject(t, "alice", "a.png", "image/png", []byte("png bytes"))
	var wg sync.WaitGroup
	statuses := make([]int, 12)
	bodies := make([]string, len(statuses))
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], bodies[i] = env.confirm(t, up.key, up.token)
		}()
	}
	wg.Wait()
	answered := 0
	for i, s := range statuses {
		switch {
		case s == 200 && bodies[i] == `{"ok":true}`:
			answered++
		case s == 200 && (bodies[i] == `{"status":"duplicate"}` || strings.Contains(bodies[i], `"status":"queued"`)):
		default:
			t.Errorf("confirm %d: %d %s", i, s, bodies[i])
		}
	}
	if answered != 1 {
		t.Errorf("%d confirms got the app's answer, want 1", answered)
	}
	env.checkDelivered(t, env.deliveredOnce(t, up.key)[up.key], up.key, up.token, "alice")
}

// An upload whose callback OSS sends and which the uploader confirms
// reaches the app once, whichever comes first, and, when the confirm
// does, with the body OSS would have sent: the two routes are one event.
func TestConfirmAndCallbackOnce(t *testing.T) {
	for _, bodyJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", bodyJSON), func(t *testing.T) {
			// OSS's callbacks go nowhere: the test sends them to Caddy.
			env := newConfirmEnv(t, confirmOpts{callbackURL: cfUnreachable, json: bodyJSON})
			var keys []string

			// The confirm first, then OSS's callback. The user's name has
			// what a body encodes: the confirm must encode it as OSS does.
			const ann = "ann marie+1&x=y é"
			up := env.postObject(t, ann, "a.png", "image/png", []byte("png bytes"))
			if up.status != 203 {
				t.Fatalf("the upload's callback went somewhere: %d %s", up.status, up.answer)
			}
			if _, asked := up.signing["callback"]; !asked {
				t.Fatal("without confirm_only the post-policy answer must still ask OSS for a callback")
			}
			cb := env.lastCallback(t, up.key)
			if status, body := env.confirm(t, up.key, up.token); status != 200 || body != `{"ok":true}` {
				t.Fatalf("confirm: %d %s", status, body)
			}
			if status := env.sendCallback(t, cb); status != 200 {
				t.Fatalf("the callback after the confirm: %d", status)
			}
			keys = append(keys, up.key)
			got := env.deliveredOnce(t, keys...)[up.key]
			env.checkDelivered(t, got, up.key, up.token, ann)
			if got.body != cb.Body {
				t.Errorf("the confirm rendered\n%s\nOSS rendered\n%s", got.body, cb.Body)
			}

			// OSS's callback first, then the confirm: a duplicate.
			for _, mode := range []string{"presign", "sts"} {
				var up cfUpload
				if mode == "presign" {
					up = env.presignPut(t, "bob", "b.png", "image/png", []byte("presigned bytes"))
				} else {
					s := env.stsSession(t, "bob")
					key := s.prefix + "c.png"
					// The STS uploader sends the callback it was given.
					hdr := s.answer["CallbackHeaders"].(map[string]any)
					up = s.putWithCallback(t, key, hdr)
				}
				cb := env.lastCallback(t, up.key)
				if status := env.sendCallback(t, cb); status != 200 {
					t.Fatalf("%s: the callback: %d", mode, status)
				}
				if status, body := env.confirm(t, up.key, up.token); status != 200 || body != `{"status":"duplicate"}` {
					t.Errorf("%s: the confirm after the callback: %d %s", mode, status, body)
				}
				keys = append(keys, up.key)
				env.checkDelivered(t, env.deliveredOnce(t, keys...)[up.key], up.key, up.token, "bob")
			}

			// Both at once, many times over.
			up = env.postObject(t, "carol", "d.png", "image/png", []byte("racing bytes"))
			cb = env.lastCallback(t, up.key)
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(2)
				go func() {
					defer wg.Done()
					if status, body := env.confirm(t, up.key, up.token); status != 200 {
						t.Errorf("racing confirm: %d %s", status, body)
					}
				}()
				go func() {
					defer wg.Done()
					if status := env.sendCallback(t, cb); status != 200 {
						t.Errorf("racing callback: %d", status)
					}
				}()
			}
			wg.Wait()
			keys = append(keys, up.key)
			env.checkDelivered(t, env.deliveredOnce(t, keys...)[up.key], up.key, up.token, "carol")
		})
	}
}

// putWithCallback stores an object with the callback headers of the STS
// answer, as an SDK uploader does.
func (s stsSession) putWithCallback(t *testing.T, key string, hdr map[string]any) cfUpload {
	t.Helper()
	err := s.bucket.PutObject(key, strings.NewReader("sts bytes"), oss.ContentType("image/png"),
		oss.Callback(hdr["x-oss-callback"].(string)), oss.CallbackVar(hdr["x-oss-callback-var"].(string)))
	// The callback URL goes nowhere: OSS stores the object and reports
	// CallbackFailed.
	if err != nil && !strings.Contains(err.Error(), "203") && !strings.Contains(err.Error(), "CallbackFailed") {
		t.Fatalf("PutObject %s: %v", key, err)
	}
	return cfUpload{key: key, token: s.token, status: 203}
}

// A confirmed upload emits upload_verified once, with via "confirm" and
// OSS's facts, then its outcome; the callback of the same upload emits
// nothing more, and a refused confirm emits nothing (its answer tells the
// uploader).
func TestConfirmEvents(t *testing.T) {
	env := newConfirmEnv(t, confirmOpts{callbackURL: cfUnreachable, global: eventsGlobal})
	recordedEvents.reset()
	up := env.postObject(t, "alice", "a.png", "image/png", []byte("png bytes"))
	cb := env.lastCallback(t, up.key)
	if status, body := env.confirm(t, up.key, up.token); status != 200 {
		t.Fatalf("confirm: %d %s", status, body)
	}
	if status := env.sendCallback(t, cb); status != 200 {
		t.Fatalf("callback: %d", status)
	}
	if status, _ := env.confirm(t, up.key+"x", up.token); status != 403 {
		t.Fatalf("a refused confirm: %d", status)
	}
	waitEvents(t, 2, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // nothing more arrives
	got := recordedEvents.all()
	if len(got) != 2 || got[0].name != eventUploadVerified || got[1].name != eventUploadDelivered {
		t.Fatalf("events %v, want upload_verified then upload_delivered", names(got))
	}
	obj, _ := env.emu.Object(secBucket, up.key)
	id := env.deliveredOnce(t, up.key)[up.key].header.Get("Idempotency-Key")
	checkEventData(t, got[0], wantEvent{eventUploadVerified, map[string]any{
		"id": id, "bucket": secBucket, "object": up.key, "size": int64(len(obj.Data)),
		"etag": strings.Trim(obj.ETag, `"`), "content_type": "image/png",
		"vars": map[string]string{"user": "alice"}, "via": viaConfirm,
	}})
	checkEventData(t, got[1], wantEvent{eventUploadDelivered, map[string]any{
		"id": id, "bucket": secBucket, "object": up.key, "attempts": 1, "status": 200,
	}})
}

// The startup line names the confirm route, confirm_only and the
// handler's id, also without a callback route.
func TestConfirmStartupLine(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.ConfirmPath, h.CallbackPath = "/oss/confirm", routeOff
		h.Callback = &CallbackConfig{URL: "http://intranet.example.com/oss/callback", ConfirmOnly: true}
	})
	got := map[string]any{}
	for _, f := range h.startupFields() {
		switch f.Key {
		case "callbacks", "delivery", "handler_id":
			got[f.Key] = f.String
		}
	}
	if got["callbacks"] != "confirm_only" || got["delivery"] != deliveryModeQueued || got["handler_id"] != h.id || h.callback == nil {
		t.Errorf("startup fields %v; callback route %v", got, h.callback)
	}
	if h.callbackB64 != "" {
		t.Errorf("confirm_only still builds the callback parameter %q", h.callbackB64)
	}
}

// oss-doctor checks the permissions a confirm route needs (HeadObject,
// DeleteObject), and not the callback URL that confirm_only never gives
// OSS (it may be one OSS cannot reach: that is the point).
func TestConfirmDoctorTarget(t *testing.T) {
	for _, tc := range []struct {
		callback      string
		bound, cbURL  bool
		callbackRoute string
	}{
		{`{"url":"http://10.0.0.2/oss/callback","confirm_only":true}`, true, false, `"callback_path":"off",`},
		{`{"url":"http://10.0.0.2/oss/callback","confirm_only":true}`, true, false, ``},
		{`{"url":"https://uploads.example.com/oss/callback"}`, true, true, ``},
	} {
		raw := `{"handler":"oss_upload","bucket":"b-1","region":"cn-hangzhou","access_key_id":"a","access_key_secret":"b",` +
			tc.callbackRoute + `"confirm_path":"/oss/confirm","callback":` + tc.callback + `}`
		target, err := doctorTarget(t.Context(), doctor.Found{Label: "t", Raw: json.RawMessage(raw)})
		if err != nil {
			t.Fatal(err)
		}
		if target.BoundCallbacks != tc.bound || (target.Callback != nil) != tc.cbURL {
			t.Errorf("%s: bound %v, callback URL checked %v", raw, target.BoundCallbacks, target.Callback != nil)
		}
	}
}
