package caddyoss

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/caddy-oss/caddy-oss/internal/delivery"
	"github.com/caddy-oss/caddy-oss/internal/quota"
)

// settleQuota charges a verified upload, whose event was just claimed
// fresh (so each upload is charged once, however many copies of its
// callback or confirm arrive), to the quota its signing reserved it in:
// the reservation named by the oss_quota variable is replaced by the size
// OSS stores (facts["size"]). An upload that does not fit (possible when
// it outlived its reservation, or came with STS credentials whose
// reservation an earlier upload used) is deleted and refused, 403 with
// reason quota; a failure of the ledger's storage is a 503 and keeps the
// object. Either way the claim is released: the app hears nothing, and a
// later copy is a fresh event again.
func (cr *callbackRoute) settleQuota(ctx context.Context, r *http.Request, ev *delivery.Event, facts map[string]string, via string) error {
	if cr.quota == nil || cr.bodyTpl == nil {
		return nil
	}
	key, ok := facts["x:"+quotaKeyVar]
	if !ok {
		// Signed before a reload turned the quota on (otherQuotaTemplate).
		cr.logger.Info("upload signed before the quota was configured: not charged", zap.String("object", ev.Object), zapRemote(r))
		return nil
	}
	id := facts["x:"+quotaIDVar]
	if id == quotaNoReservation {
		id = ""
	}
	size, err := strconv.ParseInt(facts["size"], 10, 64)
	sized := err == nil && size >= 0
	if sized {
		if _, err = cr.quota.ledger.Settle(ctx, ledgerKey(key), id, size); err == nil {
			return nil
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if rerr := cr.events.Release(sctx, ev); rerr != nil {
		cr.logger.Error("releasing an upload that was not charged failed", zap.String("id", ev.ID), zap.Error(rerr))
	}
	var refusal *quota.Refusal
	switch {
	case errors.As(err, &refusal):
		countQuotaRefusal(via, refusal.Reason)
		why := fmt.Sprintf("%s: %d of %d used, %d more", refusal.Reason, refusal.Used, refusal.Limit, refusal.Asked)
		return cr.deleteRefused(ctx, r, ev.Object, "upload over the quota", why, http.StatusForbidden, reasonQuota,
			zap.Int64("size", size))
	case !sized:
		cr.logger.Error("OSS told no size of a verified upload", zap.String("object", ev.Object), zapRemote(r))
		return callbackErr(http.StatusBadGateway, reasonConfirm, "confirming the upload with OSS failed: no object size")
	}
	cr.logger.Error("charging an upload to its quota failed: it stays stored, and the app was not told", zap.String("object", ev.Object),
		zap.Error(err), zapRemote(r))
	return callbackErr(http.StatusServiceUnavailable, reasonStorage, "quota records are unavailable")
}
