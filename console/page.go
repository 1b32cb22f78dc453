package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// The page: three files embedded in the binary, served as they are.
//
//go:embed assets
var assets embed.FS

// pageHeaders keep the page to its own origin: no inline script, nothing
// from elsewhere, never framed.
var pageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	"X-Frame-Options":        "DENY",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"Cache-Control":          "no-cache",
}

// page serves /console (index.html) and /console/{file}.
func (c *Console) page(ec echo.Context) error {
	name := ec.Param("*")
	if name == "" {
		name = "index.html"
	}
	if !fs.ValidPath(name) {
		return domain.NotFound("no such file")
	}
	b, err := fs.ReadFile(assets, path.Join("assets", name))
	if err != nil {
		return domain.NotFound("no such file")
	}
	for k, v := range pageHeaders {
		ec.Response().Header().Set(k, v)
	}
	typ := mime.TypeByExtension(path.Ext(name))
	if typ == "" {
		typ = "application/octet-stream"
	}
	return ec.Blob(http.StatusOK, typ, b)
}
