package pusher

import (
	"strings"
	"testing"
	"time"
)

// The app fields of issue 18 in the apps file: parsed in YAML and JSON,
// defaulted, and refused with a clear error when unknown or invalid.
func TestParseAppsServerFields(t *testing.T) {
	good := []struct {
		name, doc, ext string
		check          func(a *App) bool
	}{
		{"defaults", `apps: [{id: a, key: k, secret: s}]`, ".yaml", func(a *App) bool {
			return a.enabledOn() && a.connLimit() == 0 && !a.EnableUserAuthentication && a.UserAuthenticationTimeout == 0
		}},
		{"yaml", `apps: [{id: a, key: k, secret: s, enabled: false, max_connections: 5, enable_user_authentication: true, user_authentication_timeout: 10}]`, ".yaml", func(a *App) bool {
			return !a.enabledOn() && a.connLimit() == 5 && a.EnableUserAuthentication && a.UserAuthenticationTimeout == 10*time.Second
		}},
		{"json", `{"apps":[{"id":"a","key":"k","secret":"s","enabled":true,"max_connections":-1,"enable_user_authentication":true}]}`, ".json", func(a *App) bool {
			return a.enabledOn() && a.connLimit() == 0 && a.UserAuthenticationTimeout == DefaultUserAuthenticationTimeout
		}},
		{"timeout without enable is inert", `apps: [{id: a, key: k, secret: s, user_authentication_timeout: 5}]`, ".yaml", func(a *App) bool {
			return !a.EnableUserAuthentication
		}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			apps, err := ParseApps([]byte(tc.doc), tc.ext)
			if err != nil {
				t.Fatal(err)
			}
			a := apps[0]
			a.setDefaults()
			if err := a.Validate(); err != nil {
				t.Fatal(err)
			}
			if !tc.check(&a) {
				t.Fatalf("%+v", a)
			}
		})
	}
	bad := []struct{ doc, ext, msg string }{
		{`apps: [{id: a, key: k, secret: s, enabled: maybe}]`, ".yaml", "maybe"},
		{`{"apps":[{"id":"a","key":"k","secret":"s","enabled":"no"}]}`, ".json", "enabled"},
		{`apps: [{id: a, key: k, secret: s, max_connections: lots}]`, ".yaml", "lots"},
		{`apps: [{id: a, key: k, secret: s, enable_user_auth: true}]`, ".yaml", "enable_user_auth"},
		{`{"apps":[{"id":"a","key":"k","secret":"s","user_authentication_timeout":"30s"}]}`, ".json", "user_authentication_timeout"},
		{`{"apps":[{"id":"a","key":"k","secret":"s","max_connection":3}]}`, ".json", "max_connection"},
	}
	for _, b := range bad {
		if _, err := ParseApps([]byte(b.doc), b.ext); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%s: %v, want an error about %q", b.doc, err, b.msg)
		}
	}
	invalid := []struct {
		doc, msg string
	}{
		{`apps: [{id: a, key: k, secret: s, max_connections: -2}]`, "max_connections"},
		{`apps: [{id: a, key: k, secret: s, enable_user_authentication: true, user_authentication_timeout: -1}]`, "negative"},
	}
	for _, tc := range invalid {
		apps, err := ParseApps([]byte(tc.doc), ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		a := apps[0]
		a.setDefaults()
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want an error about %q", tc.doc, err, tc.msg)
		}
	}
}
