package main

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

func TestPolicyKeepsFieldOrder(t *testing.T) {
	var p policy
	err := json.Unmarshal([]byte(`{"url":"http://b.localhost:1","key":"uploads/r/k.png",
		"fields":{"key":"uploads/r/k.png","policy":"cG9s","x-oss-date":"20240101T000000Z","success_action_status":"200","n":1}}`), &p)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"key", "uploads/r/k.png"}, {"policy", "cG9s"}, {"x-oss-date", "20240101T000000Z"},
		{"success_action_status", "200"}, {"n", "1"}}
	if p.URL != "http://b.localhost:1" || p.Key != "uploads/r/k.png" || len(p.Fields) != len(want) {
		t.Fatalf("got %+v", p)
	}
	for i := range want {
		if p.Fields[i] != want[i] {
			t.Fatalf("field %d: got %v, want %v", i, p.Fields[i], want[i])
		}
	}
}

func TestObjectOf(t *testing.T) {
	for _, c := range []struct{ ct, body, want string }{
		{"application/x-www-form-urlencoded", "bucket=b&object=uploads%2Fr%2Fa+b.png&size=3", "uploads/r/a b.png"},
		{"application/json", `{"bucket":"b","object":"uploads/r/c.png"}`, "uploads/r/c.png"},
		{"application/json; charset=utf-8", `{"object":1}`, ""},
	} {
		if got := objectOf(c.ct, []byte(c.body)); got != c.want {
			t.Errorf("objectOf(%q, %q) = %q, want %q", c.ct, c.body, got, c.want)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost:1", "http://b.localhost:2/", "http://[::1]:3"} {
		if _, err := loopbackURL("u", u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://example.com/", "https://127.0.0.1/", "http://10.0.0.1:80", "http://localhost.example.com"} {
		if _, err := loopbackURL("u", u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
	if loopbackAddr("a", "127.0.0.1:1") != nil || loopbackAddr("a", "localhost:1") == nil || loopbackAddr("a", "192.168.1.1:1") == nil {
		t.Error("loopbackAddr: wrong answer")
	}
}

func TestProcTicksAndPercentile(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if n, err := procTicks(os.Getpid()); err != nil || n < 0 {
		t.Fatalf("procTicks: %d %v", n, err)
	}
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = time.Duration(i+1) * time.Millisecond
	}
	if p50, p99 := percentile(sorted, 0.5), percentile(sorted, 0.99); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Fatalf("p50 %v, p99 %v", p50, p99)
	}
}
