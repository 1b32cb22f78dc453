// Package examples serves the example pages under /examples/: pages a user
// opens in a browser to see a feature work against this very binary.
package examples

import (
	"embed"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed pubsub dashboard.html
var files embed.FS

// Options say what to serve.
type Options struct {
	// Dashboard serves /examples/dashboard.html, the live attendee
	// dashboard of the README's quick start: embedded (development) mode
	// only, a production server has no business serving demo pages.
	Dashboard bool
	// AppKey is the Pusher key the dashboard connects with.
	AppKey string
}

// Routes serves /examples/pubsub/ (the PubSub plugin page) and, when asked,
// /examples/dashboard.html.
func Routes(e *echo.Echo, o Options) {
	pages := http.StripPrefix("/examples/", http.FileServer(http.FS(files)))
	methods := []string{http.MethodGet, http.MethodHead}
	e.Match(methods, "/examples/pubsub/*", echo.WrapHandler(pages))
	e.Match(methods, "/examples/pubsub", echo.WrapHandler(pages))
	if o.Dashboard {
		b, err := files.ReadFile("dashboard.html")
		if err != nil {
			panic(err) // embedded above: cannot happen
		}
		page := []byte(strings.ReplaceAll(string(b), "{{APP_KEY}}", o.AppKey))
		e.Match(methods, "/examples/dashboard.html", func(c echo.Context) error {
			return c.HTMLBlob(http.StatusOK, page)
		})
	}
	e.GET("/examples", func(c echo.Context) error {
		if o.Dashboard {
			return c.Redirect(http.StatusFound, "/examples/dashboard.html")
		}
		return c.Redirect(http.StatusFound, "/examples/pubsub/")
	})
}
