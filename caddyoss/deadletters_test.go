package caddyoss

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The gauge caddy_oss_callback_queue_dead has one series per handler id
// served here, from its queue's count, and none for a handler that is
// gone.
func TestDeadGauge(t *testing.T) {
	h := testHandler(t, func(h *Handler) {
		h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
	})
	for _, k := range []string{"dead/1893456000/e1", "dead/1893459600/e2"} {
		if err := h.storage.Store(t.Context(), eventsPrefix+"/"+h.id+"/"+k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.callback.events.CountDead(t.Context()); err != nil {
		t.Fatal(err)
	}
	series := func() map[string]float64 {
		ch := make(chan prometheus.Metric, 16)
		go func() { ossMetrics.callbackQueueDead.Collect(ch); close(ch) }()
		out := map[string]float64{}
		for m := range ch {
			var d dto.Metric
			if err := m.Write(&d); err != nil {
				t.Fatal(err)
			}
			if len(d.GetLabel()) != 1 || d.GetLabel()[0].GetName() != "handler" {
				t.Fatalf("labels %v", d.GetLabel())
			}
			out[d.GetLabel()[0].GetValue()] = d.GetGauge().GetValue()
		}
		return out
	}
	if got := series(); got[h.id] != 2 {
		t.Fatalf("series %v, want %s = 2", got, h.id)
	}
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := series()[h.id]; ok {
		t.Fatal("a cleaned-up handler still has a series")
	}
}

// listFailingStorage fails every List once failing is set.
type listFailingStorage struct {
	certmagic.Storage
	failing atomic.Bool
}

func (s *listFailingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if s.failing.Load() {
		return nil, errors.New("injected: list " + prefix)
	}
	return s.Storage.List(ctx, prefix, recursive)
}

// A storage failure while counting the dead events for the startup line
// is logged with its cause, not taken for none.
func TestDeadAtStartupStorageFailure(t *testing.T) {
	st := &listFailingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	h := testHandler(t, func(h *Handler) {
		h.storage = st
		h.Callback = &CallbackConfig{URL: "https://app.example.com/cb"}
	})
	core, logs := observer.New(zapcore.WarnLevel)
	h.logger = zap.New(core)
	st.failing.Store(true)
	defer st.failing.Store(false)
	if n := h.deadAtStartup(); n != 0 {
		t.Fatalf("dead %d", n)
	}
	entries := logs.FilterMessage("counting the dead events for the startup line failed").All()
	if len(entries) != 1 {
		t.Fatalf("logged %v", logs.All())
	}
	f := entries[0].ContextMap()
	if msg, _ := f["error"].(string); !strings.Contains(msg, "injected: list") || f["handler_id"] != h.id {
		t.Fatalf("fields %v", f)
	}
}
