// Package examples serves the example pages under /examples/: pages a user
// opens in a browser to see a feature work against this very binary.
package examples

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed pubsub
var files embed.FS

// Routes serves /examples/{name}/ from the embedded folders.
func Routes(e *echo.Echo) {
	h := http.StripPrefix("/examples/", http.FileServer(http.FS(files)))
	e.Match([]string{http.MethodGet, http.MethodHead}, "/examples/*", echo.WrapHandler(h))
	e.GET("/examples", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/examples/pubsub/") })
}
