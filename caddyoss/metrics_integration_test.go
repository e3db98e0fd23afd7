package caddyoss

// The metrics as a running Caddy serves them at the admin endpoint.

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/caddy-oss/caddy-oss/internal/sts"
	"github.com/caddy-oss/caddy-oss/internal/sts/ststest"
)

// scrapeOSS reads the caddy_oss_* series at the admin endpoint's /metrics,
// keyed name{label="value",…}; a histogram by its _count. text is the
// caddy_oss_* lines as served.
func scrapeOSS(t *testing.T) (series map[string]float64, text string) {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	series = map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "caddy_oss_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				// A handler label is a handler id (a digest); any other label
				// takes only the label constants.
				if !slices.Contains(metricLabelValues, l.GetValue()) && (l.GetName() != "handler" || !isHandlerID(l.GetValue())) {
					t.Errorf("%s has the label %s=%q, not one of the label constants", name, l.GetName(), l.GetValue())
				}
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key, v := name, 0.0
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				key, v = name+"_count", float64(m.GetHistogram().GetSampleCount())
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			series[key] = v
		}
	}
	var lines []string
	for l := range strings.Lines(string(raw)) {
		if strings.HasPrefix(l, "caddy_oss_") {
			lines = append(lines, l)
		}
	}
	return series, strings.Join(lines, "")
}

// assertGrowth waits until every series in want has grown by exactly its
// value since base and no other caddy_oss_* series has changed (a delivery
// is counted just after the upstream's answer went out), and returns the
// scrape.
func assertGrowth(t *testing.T, base, want map[string]float64) (map[string]float64, string) {
	t.Helper()
	var diffs []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		now, text := scrapeOSS(t)
		diffs = diffs[:0]
		for _, k := range slices.Sorted(maps.Keys(now)) {
			if got := now[k] - base[k]; got != want[k] {
				diffs = append(diffs, fmt.Sprintf("%s grew by %v, want %v", k, got, want[k]))
			}
		}
		for k := range want {
			if _, ok := now[k]; !ok {
				diffs = append(diffs, k+" is missing")
			}
		}
		if len(diffs) == 0 {
			return now, text
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the request mix:\n%s", strings.Join(diffs, "\n"))
		}
	}
}

// A known mix of requests through a running Caddy shows in /metrics with
// exact counts, which keep growing across a config reload; no label
// carries a key, user, bucket, binding or signature.
func TestMetricsIntegration(t *testing.T) {
	env := newSecEnv(t, "")
	base, _ := scrapeOSS(t)
	if _, ok := base[`caddy_oss_callback_deliveries_total{outcome="queued"}`]; !ok {
		t.Fatalf("the metrics are not registered: %v", base)
	}
	status := func(path, user string) int {
		t.Helper()
		s, _, _ := env.get(t, path, user)
		return s
	}
	var secrets []string // what no label may contain

	// Signing: 3 post-policies (one uploaded), 2 refused, 1 presign, STS
	// twice for one user (one AssumeRole, then the cache).
	_, pol, _ := env.get(t, "/oss/post-policy?filename=a.png&type=image/png&size=4", "alice")
	for range 2 {
		if s := status("/oss/post-policy?filename=a.png&type=image/png", "alice"); s != 200 {
			t.Fatalf("post-policy: %d", s)
		}
	}
	for range 2 {
		if s := status("/oss/post-policy?filename=a.html&type=text/html", "alice"); s != 400 {
			t.Fatalf("post-policy of a refused type: %d", s)
		}
	}
	_, pre, _ := env.get(t, "/oss/presign?filename=m.png&type=image/png", "mallory")
	mKey := pre["key"].(string)
	mBinding, _ := bindingFrom(t, pre["url"].(string))
	var stsKey string
	for range 2 {
		s, c, body := env.get(t, "/oss/sts", "alice")
		if s != 200 {
			t.Fatalf("sts: %d %s", s, body)
		}
		stsKey = c["AccessKeyId"].(string)
		secrets = append(secrets, c["AccessKeySecret"].(string), c["SecurityToken"].(string))
	}
	secrets = append(secrets, "alice", "mallory", "sec-ak", "sec-secret", secBucket, evilBucket,
		"uploads/", mKey, mBinding, stsKey, pol["signature"].(string), pol["key"].(string))

	// A genuine upload whose callback is verified and delivered.
	var fields [][2]string
	for k, v := range pol["fields"].(map[string]any) {
		fields = append(fields, [2]string{k, v.(string)})
	}
	if s, body := env.postForm(t, pol["url"].(string), fields, "image/png", []byte("png!")); s != 200 {
		t.Fatalf("upload: %d %s", s, body)
	}
	got := env.app.verified()
	if len(got) != 1 {
		t.Fatalf("the app received %d callbacks", len(got))
	}
	sent := env.emu.Callbacks()
	orig := sent[len(sent)-1]
	origURL, _ := url.Parse(orig.URL)
	secrets = append(secrets, orig.Header.Get("Authorization"))
	// replay sends the genuine callback again, or a copy with headers
	// changed.
	replay := func(method string, header map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://localhost:9080"+origURL.RequestURI(), strings.NewReader(orig.Body))
		for _, k := range []string{"Authorization", "X-Oss-Pub-Key-Url", "Content-Type"} {
			req.Header.Set(k, orig.Header.Get(k))
		}
		for k, v := range header {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
		req.Close = true
		resp, err := env.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := replay("POST", nil); s != 200 {
		t.Fatalf("replay: %d", s)
	}
	// Rejected directly: method, headers, signature, body.
	forged := []struct {
		method string
		header map[string]string
		status int
	}{
		{"PUT", nil, 405},
		{"POST", map[string]string{"Authorization": ""}, 400},
		{"POST", map[string]string{"Authorization": "c2lnbmF0dXJl"}, 403},
		{"POST", map[string]string{"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}, 400},
	}
	for i, f := range forged {
		if s := replay(f.method, f.header); s != f.status {
			t.Errorf("forged %d: %d, want %d", i, s, f.status)
		}
	}
	// Genuinely signed by OSS, from another account: binding, bucket,
	// confirm.
	evil, err := oss.New(env.emu.Endpoint(), "evil-ak", "evil-secret", oss.HTTPClient(env.toOSS))
	if err != nil {
		t.Fatal(err)
	}
	bucket, _ := evil.Bucket(evilBucket)
	lit := func(bucket, binding string) string {
		return "bucket=" + bucket + "&object=" + url.QueryEscape(mKey) + "&etag=ABC&size=5&mimeType=image%2Fpng&user=mallory&oss_binding=" + url.QueryEscape(binding)
	}
	for i, body := range []string{
		lit(secBucket, strings.Replace(mBinding, ".1", ".2", 1)), // tampered expiry
		lit(evilBucket, mBinding),
		lit(secBucket, mBinding), // no such object
	} {
		param := b64JSON(map[string]string{"callbackUrl": "http://localhost:9080" + secCbPath, "callbackBody": body})
		err := bucket.PutObject(fmt.Sprintf("drop/%d.png", i), strings.NewReader("evil"), oss.Callback(param))
		var se oss.ServiceError
		if !errors.As(err, &se) || se.StatusCode != 203 {
			t.Errorf("foreign callback %d: %v, want 203 CallbackFailed", i, err)
		}
	}

	const (
		sign     = `caddy_oss_sign_requests_total{outcome=%q,route=%q}`
		duration = `caddy_oss_sign_duration_seconds_count{route=%q}`
		creds    = `caddy_oss_sts_credentials_total{source=%q}`
		callback = `caddy_oss_callbacks_total{reason=%q,result=%q}`
		delivery = `caddy_oss_callback_deliveries_total{outcome=%q}`
	)
	want := map[string]float64{
		fmt.Sprintf(sign, signOK, signRoutePostPolicy):           3,
		fmt.Sprintf(sign, signRefused, signRoutePostPolicy):      2,
		fmt.Sprintf(sign, signOK, signRoutePresign):              1,
		fmt.Sprintf(sign, signOK, signRouteSTS):                  2,
		fmt.Sprintf(duration, signRoutePostPolicy):               5,
		fmt.Sprintf(duration, signRoutePresign):                  1,
		fmt.Sprintf(duration, signRouteSTS):                      2,
		fmt.Sprintf(creds, sts.SourceAssumeRole):                 1,
		fmt.Sprintf(creds, sts.SourceCache):                      1,
		"caddy_oss_sts_assume_role_errors_total":                 0,
		fmt.Sprintf(callback, reasonOK, callbackVerified):        2,
		fmt.Sprintf(callback, reasonMethod, callbackRejected):    1,
		fmt.Sprintf(callback, reasonHeaders, callbackRejected):   1,
		fmt.Sprintf(callback, reasonSignature, callbackRejected): 1,
		fmt.Sprintf(callback, reasonBody, callbackRejected):      1,
		fmt.Sprintf(callback, reasonBinding, callbackRejected):   1,
		fmt.Sprintf(callback, reasonBucket, callbackRejected):    1,
		fmt.Sprintf(callback, reasonConfirm, callbackRejected):   1,
		fmt.Sprintf(delivery, deliveryDelivered):                 1,
		fmt.Sprintf(delivery, deliveryDuplicate):                 1,
		fmt.Sprintf(delivery, deliveryQueued):                    0,
		fmt.Sprintf(delivery, deliveryRetried):                   0,
		fmt.Sprintf(delivery, deliveryFailed):                    0,
		"caddy_oss_callback_queue_pending":                       0,
	}
	_, text := assertGrowth(t, base, want)
	t.Logf("after the mix:\n%s", text)

	// A reload (STS now down, a second site with its own handler): the
	// counts go on from where they were.
	f := ststest.NewServer(t)
	f.Set(func(f *ststest.Server) { f.Mode = ststest.Down })
	reloaded := strings.Replace(env.config, "\t\t\tendpoint "+env.emu.STSEndpoint(), "\t\t\tendpoint "+f.URL, 1) + `
http://other.localhost:9080 {
	oss_upload {
		bucket other-bucket
		region cn-hangzhou
		access_key_id testid
		access_key_secret testsecret
	}
}`
	if !strings.Contains(reloaded, f.URL) {
		t.Fatal("the STS endpoint was not replaced")
	}
	env.tester.InitServer(reloaded, "caddyfile")
	if s := status("/oss/post-policy?filename=b.png&type=image/png", "alice"); s != 200 {
		t.Fatalf("post-policy after reload: %d", s)
	}
	if s := status("/oss/sts", "alice"); s != 503 {
		t.Fatalf("sts with STS down: %d", s)
	}
	if s := replay("POST", nil); s != 200 {
		t.Fatalf("replay after reload: %d", s)
	}
	if s := replay("POST", map[string]string{"Authorization": "c2lnbmF0dXJl"}); s != 403 {
		t.Fatalf("forged after reload: %d", s)
	}
	want[fmt.Sprintf(sign, signOK, signRoutePostPolicy)]++
	want[fmt.Sprintf(duration, signRoutePostPolicy)]++
	want[fmt.Sprintf(sign, signError, signRouteSTS)]++
	want[fmt.Sprintf(duration, signRouteSTS)]++
	want["caddy_oss_sts_assume_role_errors_total"]++
	want[fmt.Sprintf(callback, reasonOK, callbackVerified)]++
	want[fmt.Sprintf(delivery, deliveryDuplicate)]++
	want[fmt.Sprintf(callback, reasonSignature, callbackRejected)]++
	_, text = assertGrowth(t, base, want)
	t.Logf("after the reload:\n%s", text)

	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("/metrics contains %q", s)
		}
	}
}
