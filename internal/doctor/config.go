// Package doctor checks an oss_upload configuration against the real
// bucket: credentials, region, the permissions each configured route
// needs, the bucket's CORS rules, Block Public Access and the callback
// URL. It prints one line per check and leaves nothing in the bucket.
//
// It does not import the handler's package: the `caddy oss-doctor`
// command (caddyoss/doctorcmd.go) turns each handler it finds in a config
// into a Target, with the handler's own credential source and AssumeRole
// call, and runs the checks.
package doctor

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
)

// Found is one oss_upload handler in a Caddy JSON config.
type Found struct {
	// Label names the handler for the output: its server and the site
	// hosts that lead to it.
	Label string
	// Raw is the handler's JSON ("handler": "oss_upload" included).
	Raw json.RawMessage
	// Origins are the site origins derived from the host matchers and the
	// server's listen addresses, e.g. https://uploads.example.com; empty
	// when the route has no host matcher.
	Origins []string
}

type route struct {
	Match  []map[string]json.RawMessage `json:"match"`
	Handle []json.RawMessage            `json:"handle"`
}

type server struct {
	Listen    []string `json:"listen"`
	Routes    []route  `json:"routes"`
	AutoHTTPS *struct {
		Disable bool     `json:"disable"`
		Skip    []string `json:"skip"`
	} `json:"automatic_https"`
	Errors *struct {
		Routes []route `json:"routes"`
	} `json:"errors"`
}

// FindHandlers walks a Caddy JSON config (what `caddy adapt` prints) and
// returns every oss_upload handler of its HTTP servers, in server-name and
// route order, subroutes included.
func FindHandlers(config []byte) ([]Found, error) {
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]server `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	names := make([]string, 0, len(cfg.Apps.HTTP.Servers))
	for n := range cfg.Apps.HTTP.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Found
	for _, name := range names {
		srv := cfg.Apps.HTTP.Servers[name]
		w := walker{srv: srv, name: name}
		w.routes(srv.Routes, nil)
		if srv.Errors != nil {
			w.routes(srv.Errors.Routes, nil)
		}
		out = append(out, w.found...)
	}
	return out, nil
}

type walker struct {
	srv   server
	name  string
	found []Found
}

func (w *walker) routes(rs []route, hosts []string) {
	for _, r := range rs {
		h := hosts
		for _, m := range r.Match {
			var hs []string
			if raw, ok := m["host"]; ok && json.Unmarshal(raw, &hs) == nil && len(hs) > 0 {
				h = hs
			}
		}
		for _, raw := range r.Handle {
			var head struct {
				Handler string  `json:"handler"`
				Routes  []route `json:"routes"`
			}
			if json.Unmarshal(raw, &head) != nil {
				continue
			}
			switch {
			case head.Handler == "oss_upload":
				label := "server " + w.name
				if len(h) > 0 {
					label += ", site " + strings.Join(h, " ")
				}
				w.found = append(w.found, Found{Label: label, Raw: raw, Origins: w.origins(h)})
			case len(head.Routes) > 0:
				w.routes(head.Routes, h)
			}
		}
	}
}

// origins are the https (or http) origins of the hosts on the server's
// first listen address; hosts with wildcards have none.
func (w *walker) origins(hosts []string) []string {
	port := "443"
	if len(w.srv.Listen) > 0 {
		addr := w.srv.Listen[0]
		if i := strings.Index(addr, "/"); i >= 0 { // tcp/:443
			addr = addr[i+1:]
		}
		if _, p, err := net.SplitHostPort(addr); err == nil && p != "" {
			port = p
		}
	}
	var out []string
	for _, h := range hosts {
		if strings.ContainsAny(h, "*{}") {
			continue
		}
		scheme := "https"
		if port == "80" || w.srv.AutoHTTPS != nil && (w.srv.AutoHTTPS.Disable || contains(w.srv.AutoHTTPS.Skip, h)) {
			scheme = "http"
		}
		o := scheme + "://" + h
		if !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
			o += ":" + port
		}
		out = append(out, o)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
