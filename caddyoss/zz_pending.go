//go:build !osspending

package caddyoss

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func (h *Handler) provisionCallback(ctx caddy.Context) error { return nil }

func (h *Handler) callbackRoute(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return caddyhttp.Error(http.StatusNotImplemented, errors.New("pending"))
}
