package caddyoss

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// parseDirective is RegisterHandlerDirective's wrapper (the optional
// matcher, then the handler, in a route of its own) plus one check: in a
// block, an oss_upload without a matcher answers its routes before any
// later oss_upload without a matcher sees them, so a later one whose
// routes an earlier one answers is refused, naming both.
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	h.Next()
	file, line := h.File(), h.Line()
	h.Reset()
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if matcherSet == nil {
		if err := checkShadowed(h, handler, file, line); err != nil {
			return nil, err
		}
	}
	return h.NewRoute(matcherSet, handler), nil
}

// shadowStateKey keeps, in the adapter's state, the oss_upload directives
// without a matcher seen so far, by block.
const shadowStateKey = "oss_upload.unmatched"

// unmatchedHandler is an oss_upload without a matcher: where it is and the
// routes it answers.
type unmatchedHandler struct {
	file   string
	line   int
	routes []route
}

// checkShadowed refuses h's routes that an earlier oss_upload without a
// matcher in the same block answers, and records h's.
func checkShadowed(helper httpcaddyfile.Helper, h *Handler, file string, line int) error {
	block, ok := caddyfileBlock(helper)
	if !ok || helper.State == nil {
		return nil
	}
	seen, _ := helper.State[shadowStateKey].(map[string][]unmatchedHandler)
	if seen == nil {
		seen = map[string][]unmatchedHandler{}
		helper.State[shadowStateKey] = seen
	}
	mine := h.effectiveRoutes()
	for _, earlier := range seen[block] {
		var shadowed []string
		for _, r := range mine {
			if answers(earlier.routes, r) {
				shadowed = append(shadowed, r.name+" "+r.path)
			}
		}
		switch {
		case len(shadowed) == 0:
		case len(shadowed) == len(mine):
			return fmt.Errorf("this oss_upload is never reached: the oss_upload at %s:%d, earlier in the same block and without a matcher, answers all its routes (%s); "+
				"give them matchers (oss_upload /a/* {...}), put them in separate handle blocks, or give this one other paths, at %s:%d",
				earlier.file, earlier.line, strings.Join(shadowed, ", "), file, line)
		default:
			return fmt.Errorf("the oss_upload at %s:%d, earlier in the same block and without a matcher, answers %s before this one sees them; "+
				"give this one other paths, set them off, or give the handlers matchers, at %s:%d",
				earlier.file, earlier.line, strings.Join(shadowed, ", "), file, line)
		}
	}
	seen[block] = append(seen[block], unmatchedHandler{file, line, mine})
	return nil
}

// answers reports whether a handler with routes answers a request for r:
// one of its routes is r's path, or r lies below its Uppy routes.
func answers(routes []route, r route) bool {
	for _, o := range routes {
		if o.path == r.path {
			return true
		}
		if o.name != "uppy_path" {
			continue
		}
		below := strings.TrimSuffix(o.path, "/") + "/s3/"
		if r.name == "uppy_path" && strings.HasPrefix(strings.TrimSuffix(r.path, "/")+"/s3/", below) ||
			strings.HasPrefix(r.path, below) {
			return true
		}
	}
	return false
}

// effectiveRoutes are the routes the handler answers once Provision has
// applied the defaults, by config name; routes that are off are left out.
func (h *Handler) effectiveRoutes() []route {
	policy := routePath(h.PolicyPath, defaultPolicyPath, true)
	all := []route{
		{"sts_path", routePath(h.STSPath, defaultSTSPath, h.STS != nil)},
		{"policy_path", policy},
		{"presign_path", routePath(h.PresignPath, defaultPresignPath, true)},
		{"callback_path", routePath(h.CallbackPath, defaultCallbackPath, h.Callback != nil)},
		{"uppy_path", routePath(h.UppyPath, defaultUppyPath, policy != routeOff)},
	}
	var on []route
	for _, r := range all {
		if r.path != routeOff {
			on = append(on, r)
		}
	}
	return on
}

// caddyfileBlock names the block a directive is in: the server block (the
// adapter's Helper keeps it, unexported; its segments identify it) and,
// inside it, the handle/route block (each has BlockState of its own). ok
// is false when the Helper no longer has the field: the check is then
// skipped, and its test fails.
func caddyfileBlock(h httpcaddyfile.Helper) (string, bool) {
	pb := reflect.ValueOf(h).FieldByName("parentBlock")
	if !pb.IsValid() || pb.Kind() != reflect.Struct {
		return "", false
	}
	segs := pb.FieldByName("Segments")
	if !segs.IsValid() || segs.Kind() != reflect.Slice {
		return "", false
	}
	return fmt.Sprintf("%x/%x", segs.Pointer(), reflect.ValueOf(h.BlockState).Pointer()), true
}
