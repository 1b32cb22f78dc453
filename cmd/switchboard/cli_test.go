package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/domain/dbtest"
)

// clearEnv unsets every variable the settings read, so a test sees only
// what it sets.
func clearEnv(t *testing.T) {
	for _, s := range settings {
		t.Setenv(s.env, "")
	}
}

// TestHelp: every way of asking for help exits 0 and lists every flag with
// its environment variable and default.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"serve", "checkconfig", "apitoken", "help <command>"}},
		{[]string{"help"}, []string{"commands:"}},
		{[]string{"serve", "--help"}, nil},
		{[]string{"serve", "-h"}, nil},
		{[]string{"help", "serve"}, nil},
		{[]string{"checkconfig", "--help"}, nil},
		{[]string{"migrate", "--help"}, []string{"usage: switchboard migrate", "--database-url, DATABASE_URL", "SWITCHBOARD_DATA_DIR"}},
		{[]string{"token", "--help"}, []string{"usage: switchboard token", "-sub", "-org", "SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_JWT_MAX_TTL"}},
		{[]string{"help", "apitoken"}, []string{"usage: switchboard apitoken", "-revoke", "DATABASE_URL"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(tc.args, &out, &errOut); err != nil {
				t.Fatalf("exit with %v", err)
			}
			want := tc.want
			if want == nil { // the full list of serve's settings
				want = []string{"usage: switchboard"}
				for _, s := range settings {
					want = append(want, "--"+s.flag()+", "+s.env)
				}
				want = append(want, `--addr, SWITCHBOARD_ADDR`, `(default "5s")`, "--tls-cert, SWITCHBOARD_TLS_CERT")
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	for _, v := range []string{"--version", "version", "-v"} {
		var out bytes.Buffer
		if err := run([]string{v}, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != version {
			t.Errorf("%s: %q %v", v, out.String(), err)
		}
	}
	var errOut bytes.Buffer
	if err := run([]string{"serve", "--no-such-flag"}, io.Discard, &errOut); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Errorf("unknown flag: %v", err)
	}
}

// TestConfigFlagsAndEnv: a flag wins over its variable, which wins over the
// default; embedded mode listens on loopback unless told otherwise.
func TestConfigFlagsAndEnv(t *testing.T) {
	clearEnv(t)
	c, err := loadConfig("serve", nil, io.Discard)
	if err != nil || c.Addr != "127.0.0.1:8080" || c.DBTimeout != 5*time.Second || len(c.AllowedOrigins) != 2 || c.LogFormat != "text" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	t.Setenv("SWITCHBOARD_DB_TIMEOUT", "7s")
	t.Setenv("DATABASE_URL", "postgres://db/x")
	c, err = loadConfig("serve", []string{"--db-timeout", "9s", "--log-format=json"}, io.Discard)
	if err != nil || c.DBTimeout != 9*time.Second || c.Addr != ":8080" || c.AllowedOrigins != nil || c.LogFormat != "json" {
		t.Fatalf("flags: %+v %v", c, err)
	}
	clearEnv(t)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL: must be a postgres://"},
		{map[string]string{"SWITCHBOARD_LOG_FORMAT": "xml"}, "SWITCHBOARD_LOG_FORMAT: want text or json"},
		{map[string]string{"SWITCHBOARD_TLS_CERT": "c.pem"}, "SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY go together"},
		{map[string]string{"SWITCHBOARD_ALLOWED_ORIGINS": "localhost:5173"}, "SWITCHBOARD_ALLOWED_ORIGINS"},
		{map[string]string{"SWITCHBOARD_RELAY_MODE": "fast"}, "SWITCHBOARD_RELAY_MODE: want auto"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		if _, err := loadConfig("serve", nil, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
}

// TestProductionSecrets: with PostgreSQL, the public defaults and weak
// secrets are refused, each naming its variable; embedded mode keeps them.
func TestProductionSecrets(t *testing.T) {
	good := map[string]string{"DATABASE_URL": "postgres://db/x", "SWITCHBOARD_JWT_SECRET": strings.Repeat("k", 32),
		"SWITCHBOARD_APP_KEY": "my-key", "SWITCHBOARD_APP_SECRET": "my-app-secret-0123"}
	for _, tc := range []struct {
		name   string
		change map[string]string
		want   []string
	}{
		{"all set", nil, nil},
		{"embedded keeps the defaults", map[string]string{"DATABASE_URL": "", "SWITCHBOARD_JWT_SECRET": "", "SWITCHBOARD_APP_KEY": "", "SWITCHBOARD_APP_SECRET": ""}, nil},
		{"no JWT secret", map[string]string{"SWITCHBOARD_JWT_SECRET": ""}, []string{"SWITCHBOARD_JWT_SECRET is required"}},
		{"short JWT secret", map[string]string{"SWITCHBOARD_JWT_SECRET": "abc"}, []string{"SWITCHBOARD_JWT_SECRET is 3 bytes"}},
		{"dev JWT secret", map[string]string{"SWITCHBOARD_JWT_SECRET": devSecret}, []string{"publicly known"}},
		{"default app", map[string]string{"SWITCHBOARD_APP_KEY": "", "SWITCHBOARD_APP_SECRET": ""}, []string{"SWITCHBOARD_APP_KEY is the public default", "SWITCHBOARD_APP_SECRET is a public default"}},
		{"short app secret", map[string]string{"SWITCHBOARD_APP_SECRET": "s3"}, []string{"SWITCHBOARD_APP_SECRET is 2 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range good {
				t.Setenv(k, v)
			}
			for k, v := range tc.change {
				t.Setenv(k, v)
			}
			c, err := loadConfig("serve", nil, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			apps, err := c.pusherApps()
			if err != nil {
				t.Fatal(err)
			}
			problems := c.productionProblems(apps)
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %v, want %d", problems, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(problems[i].Error(), w) {
					t.Errorf("problem %q, want %q", problems[i], w)
				}
			}
			// checkconfig reports the same, and exits non-zero.
			var out bytes.Buffer
			err = run([]string{"checkconfig"}, &out, io.Discard)
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("checkconfig: %v (%s)", err, out.String())
			}
		})
	}
}

// TestServeErrorsSayWhatToDo: a port in use and a missing database name
// the variable to change.
func TestServeErrorsSayWhatToDo(t *testing.T) {
	clearEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("SWITCHBOARD_ADDR", l.Addr().String())
	err = serve(context.Background(), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "SWITCHBOARD_ADDR") {
		t.Fatalf("port in use: %v", err)
	}
	u := dbtest.PostgresURL()
	missing := strings.Replace(u, "/test", "/no_such_database_here", 1)
	if missing == u {
		t.Skip("the test database URL has no /test to replace")
	}
	t.Setenv("DATABASE_URL", missing)
	t.Setenv("SWITCHBOARD_JWT_SECRET", testJWTSecret)
	t.Setenv("SWITCHBOARD_APP_KEY", testAppKey)
	t.Setenv("SWITCHBOARD_APP_SECRET", testAppSecret)
	err = run([]string{"migrate"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("missing database: %v", err)
	}
}

// TestTLS serves HTTPS and WSS on the one listener with a certificate made
// here.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	addr, stop := startServeTLS(t, certFile, keyFile)
	defer stop()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	res, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("healthz over TLS: %d", res.StatusCode)
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+addr+"/app/app-key?protocol=7", nil)
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), "pusher:connection_established") {
		t.Fatalf("wss first frame %s %v", msg, err)
	}
	// Plain HTTP on the TLS port is refused.
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}
}

func startServeTLS(t *testing.T, cert, key string) (string, func()) {
	t.Helper()
	clearEnv(t)
	addr := freeAddr(t)
	t.Setenv("SWITCHBOARD_ADDR", addr)
	t.Setenv("SWITCHBOARD_DATA_DIR", t.TempDir())
	t.Setenv("SWITCHBOARD_TLS_CERT", cert)
	t.Setenv("SWITCHBOARD_TLS_KEY", key)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, nil, io.Discard, io.Discard) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS listener: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, func() {
		cancel()
		<-done
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
