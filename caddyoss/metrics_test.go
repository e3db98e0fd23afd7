package caddyoss

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-oss/caddy-oss/internal/quota"
	"github.com/caddy-oss/caddy-oss/internal/sts"
)

// metricLabelValues are all the values a label of the oss_upload metrics
// may have.
var metricLabelValues = []string{
	signRoutePostPolicy, signRoutePresign, signRouteSTS, signRouteUppy,
	signOK, signRefused, signError,
	sts.SourceCache, sts.SourceAssumeRole,
	callbackVerified, callbackRejected,
	deliveryDelivered, deliveryQueued, deliveryRetried, deliveryDuplicate, deliveryFailed,
	deliveryRefused, deliveryDead, deliveryLost, deliveryStorage, reasonURL,
	reasonOK, reasonMethod, reasonHeaders, reasonUntrustedKey, reasonKeyFetch, reasonSignature,
	reasonBody, reasonBinding, reasonConfirm, reasonBucket, reasonStorage, reasonLimits,
	reasonQuota, viaCallback, viaConfirm,
	eventUploadVerified, eventUploadDelivered, eventUploadRefused, eventUploadDead, eventCallbackRejected,
	string(quota.ReasonBytes), string(quota.ReasonUploads), string(quota.ReasonPending),
}

// metricNames are the names of the oss_upload metrics, from their
// descriptors.
func metricNames(t *testing.T) []string {
	t.Helper()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		for _, c := range newOSSMetrics().collectors() {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names = append(names, m[1])
	}
	return names
}

// Registering twice with one registry (two handlers in a config) neither
// panics nor warns; a new registry (a reload) reports the counts so far.
func TestMetricsRegisterTwice(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	logger := zap.New(core)
	first := prometheus.NewPedanticRegistry()
	registerMetrics(first, logger)
	registerMetrics(first, logger)
	registerMetrics(nil, logger)
	if logs.Len() != 0 {
		t.Fatalf("warnings: %v", logs.All())
	}
	before := gatherValue(t, first, "caddy_oss_sts_assume_role_errors_total")
	ossMetrics.assumeRoleErrors.Inc()

	second := prometheus.NewPedanticRegistry()
	registerMetrics(second, logger)
	for _, reg := range []*prometheus.Registry{first, second} {
		if got := gatherValue(t, reg, "caddy_oss_sts_assume_role_errors_total"); got != before+1 {
			t.Errorf("assume_role_errors = %v, want %v", got, before+1)
		}
	}
	// Another collector under one of the names is logged, not reported.
	other := prometheus.NewPedanticRegistry()
	other.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "caddy_oss_callback_queue_pending", Help: "x"}))
	registerMetrics(other, logger)
	if logs.Len() != 1 {
		t.Errorf("warnings: %v", logs.All())
	}
}

func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// Every way a callback is rejected carries its reason; the signing routes'
// outcome follows the status.
func TestMetricsReasonsAndOutcomes(t *testing.T) {
	v, err := newCallbackVerifier(nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	_, untrusted := v.keysFor(t.Context(), "aHR0cDovL2V4YW1wbGUuY29tL2tleS5wZW0=") // http://example.com/key.pem
	_, notB64 := v.keysFor(t.Context(), "%%%")
	long, _ := http.NewRequest("POST", "/", strings.NewReader("0123456789"))
	_, tooLong := readBody(long, 4)
	limited, _ := http.NewRequest("POST", "/", io.NopCloser(errReader{caddyhttp.Error(http.StatusRequestEntityTooLarge, errors.New("too large"))}))
	_, limitErr := readBody(limited, 4)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{untrusted, reasonUntrustedKey},
		{notB64, reasonHeaders},
		{tooLong, reasonBody},
		{limitErr, reasonBody},
		{callbackErr(http.StatusBadGateway, reasonConfirm, "x"), reasonConfirm},
	} {
		if got := callbackReason(tc.err); got != tc.want {
			t.Errorf("%v: reason %q, want %q", tc.err, got, tc.want)
		}
	}
	var he caddyhttp.HandlerError
	if !errors.As(limitErr, &he) || he.StatusCode != http.StatusRequestEntityTooLarge || he.Err.Error() != "too large" {
		t.Errorf("request_body's error became %v", limitErr)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, signOK},
		{caddyhttp.Error(http.StatusBadRequest, nil), signRefused},
		{caddyhttp.Error(499, nil), signRefused},
		{caddyhttp.Error(http.StatusServiceUnavailable, nil), signError},
		{errors.New("plain"), signError},
	} {
		if got := signOutcome(tc.err); got != tc.want {
			t.Errorf("%v: outcome %q, want %q", tc.err, got, tc.want)
		}
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// The dashboard is JSON and every metric it queries exists.
func TestMetricsDashboard(t *testing.T) {
	b, err := os.ReadFile("../grafana/caddy-oss.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		SchemaVersion int `json:"schemaVersion"`
		Panels        []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.SchemaVersion < 36 || len(dash.Panels) == 0 {
		t.Fatalf("schemaVersion %d, %d panels", dash.SchemaVersion, len(dash.Panels))
	}
	names := metricNames(t)
	used := map[string]bool{}
	ref := regexp.MustCompile(`caddy_oss_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range ref.FindAllString(tg.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if s, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(names, s) {
						base = s
					}
				}
				if !slices.Contains(names, base) {
					t.Errorf("panel %q queries %s, which does not exist", p.Title, m)
				}
				used[base] = true
			}
		}
	}
	for _, n := range names {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}
