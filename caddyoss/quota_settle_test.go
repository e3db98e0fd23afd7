package caddyoss

// Settlement: a verified upload replaces its reservation with the size
// OSS stores, once however many copies of its callback or confirm arrive;
// an upload that does not fit (STS credentials used beyond the quota) is
// deleted and refused, and the app never hears of it.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// qUpload is one upload through a mode: its key, the confirm token, and
// the reservation it was signed with.
type qUpload struct{ key, token, reservation string }

// uploadIn signs and uploads n bytes as user in mode, through OSS's
// callback (confirmOnly false) or with no callback asked (true), and
// returns what it reserved and the upload.
func (e *quotaEnv) uploadIn(t *testing.T, mode, user string, n int, confirmOnly bool) (reserved int64, a signAnswer, up qUpload) {
	t.Helper()
	data := randomBytes(n)
	reserved = qMaxSize
	switch mode {
	case "post-policy", "uppy params":
		target := qPolicy
		if mode == "uppy params" {
			target, reserved = qParams+fmt.Sprintf("&size=%d", n), int64(n)
		}
		a = e.sign(t, target, user, nil).granted(t, mode)
		up = qUpload{a.body["fields"].(map[string]any)["key"].(string), confirmOf(t, a.body["confirm"]).Token, a.reservation(t)}
		if status, body := e.postWith(t, a, data, nil); status/100 != 2 {
			t.Fatalf("%s: OSS answered %d %s", mode, status, body)
		}
	case "presign":
		a = e.sign(t, qPresign, user, nil).granted(t, mode)
		cu := e.presignPutURL(t, a.body, data)
		if cu.status != 200 {
			t.Fatalf("presign: OSS answered %d %s", cu.status, cu.answer)
		}
		up = qUpload{cu.key, cu.token, a.reservation(t)}
	case "sts":
		a = e.sign(t, qSTS, user, nil).granted(t, mode)
		s := e.stsFrom(t, a)
		up = qUpload{s.prefix + "sts.png", s.token, a.reservation(t)}
		if confirmOnly {
			s.put(t, "sts.png", "image/png", data)
		} else if err := s.putCallback(up.key, data, ""); err != nil {
			t.Fatalf("sts: %v", err)
		}
	case "uppy multipart":
		a = e.create(t, user).granted(t, mode)
		mp, parts := e.multipartPart(t, a, user, data)
		sealed := a.body["uploadId"].(string)
		status, body := e.complete(t, mp, sealed, user, parts)
		if status != 200 {
			t.Fatalf("complete: %d %s", status, body)
		}
		var done struct{ Confirm confirmInfo }
		_ = json.Unmarshal([]byte(body), &done)
		head := sealed[:strings.LastIndexByte(sealed, '.')]
		up = qUpload{mp.Key, done.Confirm.Token, head[strings.IndexByte(head, '~')+1:]}
	default:
		t.Fatalf("no mode %s", mode)
	}
	return reserved, a, up
}

// In every mode, the verified upload's real size replaces what its
// signing reserved, through OSS's callback or the confirm route, and
// copies of the callback and the confirm change nothing.
func TestQuotaSettlesRealSize(t *testing.T) {
	for _, via := range []string{qCbRoute, qCfRoute} {
		t.Run(via, func(t *testing.T) {
			confirmOnly := via == qCfRoute
			e := newQuotaEnv(t, "", "bytes 5000 per 1h\nuploads 10 per 1h\npending 3", confirmOpts{confirmOnly: confirmOnly})
			var keys []string
			reservations := map[string]string{}
			for i, mode := range []string{"post-policy", "presign", "sts", "uppy params", "uppy multipart"} {
				n := 101 * (i + 1)
				u0 := e.usage(t, "alice")
				reserved, a, up := e.uploadIn(t, mode, "alice", n, confirmOnly)
				used := u0.Bytes + reserved
				checkRemaining(t, a, 5000-used, 10-(u0.Uploads+1), 3-(u0.Pending+1))
				if confirmOnly {
					e.checkUsage(t, "alice", used, u0.Uploads+1, u0.Pending+1)
					if status, body := e.confirm(t, up.key, up.token); status != 200 {
						t.Fatalf("%s: confirm: %d %s", mode, status, body)
					}
				}
				e.checkUsage(t, "alice", u0.Bytes+int64(n), u0.Uploads+1, u0.Pending)
				// Copies: the confirm, and OSS's callback sent again.
				if status, body := e.confirm(t, up.key, up.token); status != 200 || !strings.Contains(body, "duplicate") {
					t.Errorf("%s: a second confirm: %d %s", mode, status, body)
				}
				if !confirmOnly {
					if status := e.sendCallback(t, e.lastCallback(t, up.key)); status != 200 {
						t.Errorf("%s: a copy of the callback: %d", mode, status)
					}
				}
				e.checkUsage(t, "alice", u0.Bytes+int64(n), u0.Uploads+1, u0.Pending)
				keys = append(keys, up.key)
				reservations[up.key] = up.reservation
			}
			for key, r := range e.deliveredOnce(t, keys...) {
				if f := appFields(t, r.body); f[quotaIDVar] != reservations[key] || f[quotaKeyVar] != "alice" {
					t.Errorf("%s: the app received the reservation %q of %q, want %q of alice", key, f[quotaIDVar], f[quotaKeyVar], reservations[key])
				}
			}
		})
	}
}

// STS credentials used for more uploads than the quota has room for: the
// first settles the answer's reservation, the next are charged on their
// own while they fit, and the one that does not fit is deleted from OSS
// and refused (403, so the uploader gets 203 CallbackFailed, or the
// confirm's 403); the app never hears of it.
func TestQuotaRefusesUploadsOverQuota(t *testing.T) {
	for _, tc := range []struct {
		name, via, limits, reason string
		sizes                     []int // the last is refused, the others fit
		used                      int64 // bytes charged in the end
	}{
		{"callback, uploads", qCbRoute, "uploads 2 per 1h", "uploads", []int{100, 100, 100}, 200},
		{"callback, bytes", qCbRoute, "bytes 1500 per 1h", "bytes", []int{800, 700, 2}, 1500},
		{"callback, real size over the rest", qCbRoute, "bytes 1500 per 1h", "bytes", []int{800, 800}, 800},
		{"confirm, uploads", qCfRoute, "uploads 2 per 1h", "uploads", []int{100, 100, 100}, 200},
		{"confirm, bytes", qCfRoute, "bytes 1500 per 1h", "bytes", []int{800, 800}, 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			confirmOnly := tc.via == qCfRoute
			e := newQuotaEnv(t, "", tc.limits, confirmOpts{confirmOnly: confirmOnly})
			s := e.stsFrom(t, e.sign(t, qSTS, "alice", nil).granted(t, "sts"))
			counted := func() [2]float64 {
				vec := ossMetrics.callbacks
				if confirmOnly {
					vec = ossMetrics.confirms
				}
				return [2]float64{refusals(tc.via, tc.reason), testutil.ToFloat64(vec.WithLabelValues(callbackRejected, reasonQuota))}
			}
			before := counted()
			var keys []string
			for i, n := range tc.sizes {
				key := fmt.Sprintf("%sover-%d.png", s.prefix, i)
				last := i == len(tc.sizes)-1
				var status int
				var answer string
				if confirmOnly {
					s.put(t, key[len(s.prefix):], "image/png", randomBytes(n))
					status, answer = e.confirm(t, key, s.token)
				} else if err := s.putCallback(key, randomBytes(n), ""); err == nil {
					status = 200
				} else if isCallbackFailed(err, 403) {
					status, answer = 403, err.Error()
				} else {
					t.Fatalf("upload %d: %v", i, err)
				}
				_, stored := e.emu.Object(secBucket, key)
				switch {
				case !last && (status != 200 || !stored):
					t.Fatalf("upload %d within the quota: %d %s, stored %v", i, status, answer, stored)
				case last && (status != 403 || confirmOnly && !strings.Contains(answer, "quota")):
					t.Fatalf("the upload over the quota: %d %s, want 403 naming the quota", status, answer)
				case last && stored:
					t.Fatal("the upload over the quota is still stored")
				case !last:
					keys = append(keys, key)
				}
			}
			e.deliveredOnce(t, keys...)
			if after := counted(); after[0]-before[0] != 1 || after[1]-before[1] != 1 {
				t.Errorf("refusals counted %v → %v, want one more of each", before, after)
			}
			e.checkUsage(t, "alice", tc.used, int64(len(keys)), 0)
			// A copy of the refused upload's confirm or callback finds
			// nothing to deliver.
			last := fmt.Sprintf("%sover-%d.png", s.prefix, len(tc.sizes)-1)
			if confirmOnly {
				if status, body := e.confirm(t, last, s.token); status != http.StatusNotFound {
					t.Errorf("the refused upload confirmed again: %d %s", status, body)
				}
			} else if status := e.sendCallback(t, e.lastCallback(t, last)); status == 200 {
				t.Error("a copy of the refused upload's callback was accepted")
			}
			e.deliveredOnce(t, keys...)
			e.checkUsage(t, "alice", tc.used, int64(len(keys)), 0)
		})
	}
}
