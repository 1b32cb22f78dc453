// Package sdk serves the PubSub browser SDK: one source (core.js) wrapped
// as a plain script (window.PubSub) and as an ES module, plus its
// TypeScript declarations. No build step: the binary is the CDN.
package sdk

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed core.js
var core string

//go:embed pubsub.d.ts
var types string

// The wrappers around core.js, which defines `const PubSub` and nothing
// else at top level.
var (
	script = "/* Switchboard PubSub SDK: window.PubSub */\n(function(){\"use strict\";\n" + core +
		"\nglobalThis.PubSub = PubSub;\nPubSub.autoConnect(typeof document !== \"undefined\" ? document.currentScript : null);\n})();\n"
	module = "/* Switchboard PubSub SDK (ES module) */\n" + core +
		"\nexport default PubSub;\nexport const connect = PubSub.connect, publish = PubSub.publish, subscribe = PubSub.subscribe, disconnect = PubSub.disconnect, create = PubSub.create;\n"
)

// Files are the served files by path.
var Files = map[string]struct{ Type, Body string }{
	"/sdk/pubsub.js":   {"text/javascript; charset=utf-8", script},
	"/sdk/pubsub.mjs":  {"text/javascript; charset=utf-8", module},
	"/sdk/pubsub.d.ts": {"application/typescript; charset=utf-8", types},
}

// Routes serves the SDK files. Any origin may load them (an ES module
// import from another origin needs CORS); they change only with the
// binary, so an ETag lets browsers revalidate cheaply, and they are
// compressed once, here (the script is about 4.6 KB gzipped).
func Routes(e *echo.Echo) {
	for path, f := range Files {
		sum := sha256.Sum256([]byte(f.Body))
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = w.Write([]byte(f.Body))
		_ = w.Close()
		e.Match([]string{http.MethodGet, http.MethodHead}, path, func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Cache-Control", "public, max-age=300")
			h.Set("ETag", etag)
			h.Add("Vary", "Accept-Encoding")
			if c.Request().Header.Get("If-None-Match") == etag {
				return c.NoContent(http.StatusNotModified)
			}
			if strings.Contains(c.Request().Header.Get("Accept-Encoding"), "gzip") {
				h.Set("Content-Encoding", "gzip")
				return c.Blob(http.StatusOK, f.Type, gz.Bytes())
			}
			return c.Blob(http.StatusOK, f.Type, []byte(f.Body))
		})
	}
}
