package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-oss/caddy-oss/internal/redistest"
	"github.com/caddy-oss/caddy-oss/ossemu"
)

// Two instances of one site share only Caddy's storage. Each upload is
// confirmed and called back, in either order and at once, on either
// instance: it reaches the app once, with one Idempotency-Key. On the file
// system and on a real redis-server.
func TestConfirmAcrossInstances(t *testing.T) {
	for _, backend := range []string{"file_system", "redis"} {
		t.Run(backend, func(t *testing.T) {
			storage := "storage file_system " + t.TempDir()
			if backend == "redis" {
				storage = "storage " + redisModule(redistest.Start(t).Addr)
			}
			confirmAcrossInstances(t, storage)
		})
	}
}

func confirmAcrossInstances(t *testing.T, storage string) {
	emu, keyFile := startEmulator(t)
	app := newObjectApp(t)
	app.up(t)
	// One site: the same oss_upload, so the same handler identity, on two
	// processes. OSS's callbacks go nowhere (the site is one OSS cannot
	// reach); the test sends them to either instance itself.
	var ins [2]*instance
	for i := range ins {
		in := &instance{t: t, port: freePort(t), home: t.TempDir()}
		in.config = siteConfig(storage, in.port, emu, fmt.Sprintf(`
		key_prefix uploads/
		confirm_path /oss/confirm
		callback {
			url http://127.0.0.1:9/oss/callback
			trusted_key %s
			answer_within 2s
		}`, keyFile), app.addr)
		in.start()
		ins[i] = in
	}
	toOSS := emulatorClient(emu)
	client := &http.Client{Timeout: 10 * time.Second}

	// upload signs on instance 0, stores in OSS (whose callback fails) and
	// returns the key, the token and the callback OSS tried to send.
	upload := func(content string) (key, token string, cb ossemu.CallbackRecord) {
		t.Helper()
		resp, err := client.Get(fmt.Sprintf("http://localhost:%d/oss/post-policy?filename=f.txt&type=text/plain", ins[0].port))
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			URL     string            `json:"url"`
			Key     string            `json:"key"`
			Fields  map[string]string `json:"fields"`
			Confirm struct{ Token string }
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || p.Confirm.Token == "" {
			t.Fatalf("post-policy: %v %+v", err, p)
		}
		up, err := postObject(toOSS, p.URL, p.Fields, "f.txt", content)
		if err != nil {
			t.Fatal(err)
		}
		up.Body.Close()
		if up.StatusCode != 203 {
			t.Fatalf("the upload's callback went somewhere: %d", up.StatusCode)
		}
		sent := emu.Callbacks()
		return p.Key, p.Confirm.Token, sent[len(sent)-1]
	}
	confirm := func(in *instance, key, token string) int {
		b, _ := json.Marshal(map[string]string{"key": key, "token": token})
		resp, err := client.Post(fmt.Sprintf("http://localhost:%d/oss/confirm", in.port), "application/json", bytes.NewReader(b))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	callback := func(in *instance, cb ossemu.CallbackRecord) int {
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://localhost:%d/oss/callback", in.port), strings.NewReader(cb.Body))
		for k, vs := range cb.Header {
			if k != "Content-Length" && k != "Host" {
				req.Header[k] = vs
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	var objects []string
	// The confirm on one instance, then the callback on the other.
	key, token, cb := upload("confirmed first")
	if s := confirm(ins[1], key, token); s != 200 {
		t.Fatalf("confirm: %d", s)
	}
	if s := callback(ins[0], cb); s != 200 {
		t.Fatalf("callback after the confirm: %d", s)
	}
	objects = append(objects, key)
	// The callback first, then the confirm on the other.
	key, token, cb = upload("called back first")
	if s := callback(ins[1], cb); s != 200 {
		t.Fatalf("callback: %d", s)
	}
	if s := confirm(ins[0], key, token); s != 200 {
		t.Fatalf("confirm after the callback: %d", s)
	}
	objects = append(objects, key)
	// Everything at once, on both.
	for round := 0; round < 3; round++ {
		key, token, cb = upload(fmt.Sprintf("racing %d", round))
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			for _, in := range ins {
				wg.Add(2)
				go func() {
					defer wg.Done()
					if s := confirm(in, key, token); s != 200 {
						t.Errorf("racing confirm: %d", s)
					}
				}()
				go func() {
					defer wg.Done()
					if s := callback(in, cb); s != 200 {
						t.Errorf("racing callback: %d", s)
					}
				}()
			}
		}
		wg.Wait()
		objects = append(objects, key)
	}

	time.Sleep(500 * time.Millisecond) // nothing more arrives
	got := app.delivered()
	for _, o := range objects {
		if got[o] != 1 {
			t.Errorf("%s reached the app %d times, want once", o, got[o])
		}
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(got) != len(objects) || app.unverified != 0 {
		t.Errorf("the app received %v and %d unverified requests", got, app.unverified)
	}
	for o, keys := range app.keys {
		if len(keys) != 1 {
			t.Errorf("%s: Idempotency-Keys %v", o, keys)
		}
	}
}
