package domain

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Origins is the list of browser origins allowed to call the server from
// their pages: CORS on HTTP routes and the Origin check of the WebSocket
// endpoints read the same list (SWITCHBOARD_ALLOWED_ORIGINS). A page served
// by the server itself (same host) is always allowed, and so is a request
// without Origin: a server, a script, a mobile app.
type Origins struct {
	any   bool
	exact map[string]bool // "http://app.example.com:5173"
	ports map[string]bool // "http://localhost" of "http://localhost:*"
}

// ParseOrigins reads entries: "*" (any origin), "scheme://host[:port]", or
// "scheme://host:*" (any port).
func ParseOrigins(entries []string) (Origins, error) {
	o := Origins{exact: map[string]bool{}, ports: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "*" {
			o.any = true
			continue
		}
		if base, ok := strings.CutSuffix(e, ":*"); ok {
			u, err := url.Parse(base)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() != "" || u.Path != "" {
				return Origins{}, fmt.Errorf("%q: want scheme://host:* such as http://localhost:*", e)
			}
			o.ports[strings.ToLower(u.Scheme+"://"+u.Hostname())] = true
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return Origins{}, fmt.Errorf("%q: want an origin such as https://app.example.com or http://localhost:5173 (scheme, host, optional port; no path)", e)
		}
		o.exact[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return o, nil
}

// Allowed reports whether a request with this Origin header to host (the
// request's Host) may proceed.
func (o Origins) Allowed(origin, host string) bool {
	if origin == "" || o.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	return o.exact[strings.ToLower(u.Scheme+"://"+u.Host)] || o.ports[strings.ToLower(u.Scheme+"://"+u.Hostname())]
}

// CheckOrigin is Allowed for a WebSocket upgrade request (the upgrader's
// CheckOrigin); a nil list allows any origin.
func (o *Origins) CheckOrigin(r *http.Request) bool {
	return o == nil || o.Allowed(r.Header.Get("Origin"), r.Host)
}
