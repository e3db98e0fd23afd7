// Package ststest is a fake STS for the tests of the broker and of the STS
// route.
package ststest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// AccessKeyID is the AccessKey ID whose signed requests the fake answers
// with credentials.
const AccessKeyID = "testid"

// Modes of a Server.
const (
	Down      = "down"      // every call fails with 500 InternalError
	Throttled = "throttled" // every call fails with 400 Throttling.User
)

// Server answers AssumeRole as STS does (protocol §5.5/§5.6), counting
// calls. The n-th call gets the credentials STS.key<n>, secret<n> and
// CAIStoken<n>.
type Server struct {
	*httptest.Server
	// Calls counts the requests the server got.
	Calls atomic.Int64

	mu sync.Mutex
	// The fields below are changed with Set.

	// Mode is "" (answer), Down or Throttled.
	Mode string
	// Hold, when non-nil, makes answers wait for it to close.
	Hold chan struct{}
	// Expiration is when the credentials the server issues expire.
	// Default: an hour after NewServer.
	Expiration time.Time
	// LastQuery holds the parameters of the latest request; read it when
	// no request is in flight.
	LastQuery map[string]string
}

// NewServer starts a Server, closed when t ends.
func NewServer(t testing.TB) *Server {
	f := &Server{Expiration: time.Now().Add(time.Hour)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// Set changes the server's fields with fn, under its lock.
func (f *Server) Set(fn func(f *Server)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := f.Calls.Add(1)
	_ = r.ParseForm()
	f.mu.Lock()
	mode, hold, exp := f.Mode, f.Hold, f.Expiration
	f.LastQuery = map[string]string{}
	for k := range r.Form {
		f.LastQuery[k] = r.Form.Get(k)
	}
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	w.Header().Set("Content-Type", "application/json")
	q := r.Form
	switch {
	case mode == Down:
		w.WriteHeader(500)
		fmt.Fprint(w, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"InternalError","Message":"STS Server Internal Error happened."}`)
		return
	case mode == Throttled:
		w.WriteHeader(400)
		fmt.Fprint(w, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"Throttling.User","Message":"Request was denied due to user flow control."}`)
		return
	case q.Get("Action") != "AssumeRole" || q.Get("RoleArn") == "" || q.Get("RoleSessionName") == "" ||
		q.Get("Signature") == "" || q.Get("AccessKeyId") != AccessKeyID || q.Get("DurationSeconds") == "" || q.Get("Policy") == "":
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"RequestId":"r","HostId":"sts.aliyuncs.com","Code":"MissingParameter","Message":"bad request %v"}`, q)
		return
	}
	fmt.Fprintf(w, `{"RequestId":"6894B13B","AssumedRoleUser":{"Arn":"%s/%s","AssumedRoleId":"1:%s"},"Credentials":{"AccessKeyId":"STS.key%d","AccessKeySecret":"secret%d","SecurityToken":"CAIStoken%d","Expiration":"%s"}}`,
		q.Get("RoleArn"), q.Get("RoleSessionName"), q.Get("RoleSessionName"), n, n, n, exp.UTC().Format("2006-01-02T15:04:05Z"))
}

// WaitFor waits up to 10s for cond, polling, and fails t if it is not
// reached.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
