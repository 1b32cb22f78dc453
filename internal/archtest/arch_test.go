package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// kind is what a room is for; the rules are written per kind.
type kind string

const (
	module  kind = "module"  // an event-management or community module
	gateway kind = "gateway" // the real-time side: hub, authorization, routes, its test helpers
	adapter kind = "adapter" // one wire protocol on the hub
	domain  kind = "domain"  // the contract every room shares
	outbox  kind = "outbox"  // the relay
	metrics kind = "metrics" // the Prometheus exporter: reads the counters the others keep
	console kind = "console" // the debug console: its page and live feed, read from the gateway's tap
	helper  kind = "helper"  // a test helper the modules' tests import
	free    kind = "free"    // wiring, benchmarks, whole-product checks: may import anything
)

// rooms names every package directory of the module (paths relative to the
// module) and its kind. A package is in the room with the longest path that
// is the package's or a parent of it, so gateway/gatewaytest is in gateway
// and gateway/pusher is an adapter. A package may always import its own
// room. A new module or adapter is one row here.
var rooms = []struct {
	path string
	kind kind
}{
	{"domain", domain},
	{"outbox", outbox},
	{"metrics", metrics},
	{"console", console},
	{"gateway", gateway},
	{"gateway/pusher", adapter},
	{"gateway/centrifuge", adapter},
	{"gateway/actioncable", adapter},
	{"attendees", module},
	{"access", module},
	{"social", module},
	{"games", module},
	{"forms", module},
	{"chat", module},
	{"notifications", module},
	{"pubsub", module},
	{"internal/apitest", helper},
	{"cmd", free},
	{"bench", free},
	{"internal", free},
	{"examples", free},
	{"openapi", free},
}

// rule says which kinds of room a kind of room must not import (other than
// itself). Tests are held to the rules as well, but for testExemptions.
type rule struct {
	from   kind
	forbid []kind
	why    string
}

var rules = []rule{
	{module, []kind{module, gateway, adapter, outbox, metrics, console},
		"modules import domain only: another module is asked through an interface domain declares and cmd/switchboard wires in"},
	{gateway, []kind{module, metrics, console},
		"the gateway routes by an event's name and scope (domain) and asks modules through domain's interfaces, never importing one; it keeps its counters, the exporter reads them"},
	{adapter, []kind{module, adapter, metrics, console},
		"protocol adapters share the hub, never each other's code, and import no module; they count through the gateway, the exporter reads it"},
	{domain, []kind{module, gateway, adapter, outbox, metrics, console},
		"domain is the contract every room imports, so it imports none of them"},
	{outbox, []kind{module, adapter, metrics, console},
		"the relay hands events to a Sink it declares and keeps its own Status for the exporter to read; cmd/switchboard wires them together"},
	{metrics, []kind{module, adapter, console},
		"the exporter reads the counters the gateway, the relay and the webhook sender keep; a module or one protocol's code is none of its business"},
	{helper, []kind{module, gateway, adapter, outbox, console},
		"the modules' tests import it, so it must not bring in what they may not import"},
	{console, []kind{module, adapter, metrics},
		"the console reads the gateway (its tap, hub, presence) and what cmd/switchboard hands it; no module or protocol's code, and only cmd imports it (every other room forbids it)"},
}

// testExemptions are the only imports the rules let tests make, each with
// its reason (paths relative to the module, exact). One that no test makes
// any more fails too, so the list only shrinks.
var testExemptions = []struct{ from, to, why string }{
	{"access", "attendees", "the tests create the attendees table access's foreign keys name, and wire the real lookup"},
	{"games", "attendees", "the tests create the attendees table games' foreign keys name, and wire the real lookup"},
	{"forms", "attendees", "the tests create the attendees table forms' foreign keys name, and wire the real lookup"},
	{"attendees", "gateway", "an end-to-end test: a REST write reaches a subscriber through the outbox relay and the hub"},
	{"attendees", "outbox", "an end-to-end test: a REST write reaches a subscriber through the outbox relay and the hub"},
}

// pkg is a package of the module as the rules see it; paths are relative
// to the module.
type pkg struct {
	path string
	// imports are the module's packages that its non-test files import;
	// testImports those that its tests (internal or external) import.
	imports, testImports []string
}

type violation struct {
	from, to string
	test     bool // only a test imports it
	rule     rule
}

type findings struct {
	violations []violation
	unused     []int    // indexes of testExemptions no import needed
	homeless   []string // packages in no room
	empty      []string // rooms with no package
}

// roomOf returns the index in rooms of the room p is in, or -1.
func roomOf(p string) int {
	best := -1
	for i, r := range rooms {
		if (p == r.path || strings.HasPrefix(p, r.path+"/")) && (best < 0 || len(r.path) > len(rooms[best].path)) {
			best = i
		}
	}
	return best
}

// check holds pkgs to the rules.
func check(pkgs []pkg) findings {
	var f findings
	used := make([]bool, len(testExemptions))
	seen := make([]bool, len(rooms))
	for _, p := range pkgs {
		from := roomOf(p.path)
		if from < 0 {
			f.homeless = append(f.homeless, p.path)
			continue
		}
		seen[from] = true
		for _, imps := range []struct {
			paths []string
			test  bool
		}{{p.imports, false}, {p.testImports, true}} {
			for _, imp := range imps.paths {
				to := roomOf(imp)
				if to < 0 || to == from {
					continue // a package in no room is reported as such
				}
				for _, r := range rules {
					if r.from != rooms[from].kind || !slices.Contains(r.forbid, rooms[to].kind) {
						continue
					}
					if imps.test {
						if i := slices.IndexFunc(testExemptions, func(e struct{ from, to, why string }) bool {
							return e.from == p.path && e.to == imp
						}); i >= 0 {
							used[i] = true
							continue
						}
						if slices.Contains(p.imports, imp) {
							continue // reported once, as the non-test import it also is
						}
					}
					f.violations = append(f.violations, violation{from: p.path, to: imp, test: imps.test, rule: r})
				}
			}
		}
	}
	for i, u := range used {
		if !u {
			f.unused = append(f.unused, i)
		}
	}
	for i, s := range seen {
		if !s {
			f.empty = append(f.empty, rooms[i].path)
		}
	}
	return f
}

// listed is the part of `go list -json` the test reads.
type listed struct {
	ImportPath, Dir, Name                                        string
	GoFiles, CgoFiles, TestGoFiles, XTestGoFiles, IgnoredGoFiles []string
	Imports, TestImports, XTestImports                           []string
	Error                                                        *struct{ Err string }
}

// graph is the module's import graph as `go list` reports it.
type graph struct {
	modPath, modDir string
	pkgs            []pkg
	listed          map[string]listed // by path relative to the module
}

var loadGraph = sync.OnceValues(func() (*graph, error) {
	var mod struct{ Path, Dir string }
	if err := goList(&mod, "", "-m", "-json"); err != nil {
		return nil, err
	}
	g := &graph{modPath: mod.Path, modDir: mod.Dir, listed: map[string]listed{}}
	var all []listed
	if err := goList(&all, mod.Dir, "-e", "-json", "./..."); err != nil {
		return nil, err
	}
	var errs []error
	for _, l := range all {
		if l.Error != nil {
			errs = append(errs, fmt.Errorf("go list: %s: %s", l.ImportPath, l.Error.Err))
		}
		rel, ok := g.rel(l.ImportPath)
		if !ok {
			continue
		}
		g.listed[rel] = l
		p := pkg{path: rel}
		imports, testImports := l.Imports, append(slices.Clone(l.TestImports), l.XTestImports...)
		// Files left out for this GOOS/GOARCH (wsframe_other.go) are read
		// too: the rules hold on every platform.
		for _, name := range l.IgnoredGoFiles {
			imps, err := fileImports(filepath.Join(l.Dir, name), l.Name)
			if err != nil {
				errs = append(errs, err)
			}
			for _, imp := range imps {
				if strings.HasSuffix(name, "_test.go") {
					testImports = append(testImports, imp.path)
				} else {
					imports = append(imports, imp.path)
				}
			}
		}
		for _, imp := range imports {
			if r, ok := g.rel(imp); ok && !slices.Contains(p.imports, r) {
				p.imports = append(p.imports, r)
			}
		}
		for _, imp := range testImports {
			if r, ok := g.rel(imp); ok && !slices.Contains(p.testImports, r) {
				p.testImports = append(p.testImports, r)
			}
		}
		g.pkgs = append(g.pkgs, p)
	}
	return g, errors.Join(errs...)
})

// goList runs go list with args in dir and decodes its JSON into out (a
// slice collects every object of the stream).
func goList(out any, dir string, args ...string) error {
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if all, ok := out.(*[]listed); ok {
		for {
			var l listed
			if err := dec.Decode(&l); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("go list %s: %v", strings.Join(args, " "), err)
			}
			*all = append(*all, l)
		}
	}
	return dec.Decode(out)
}

// rel returns importPath relative to the module, and whether it is in it.
func (g *graph) rel(importPath string) (string, bool) {
	if importPath == g.modPath {
		return "", true
	}
	rest, ok := strings.CutPrefix(importPath, g.modPath+"/")
	return rest, ok
}

type fileImport struct {
	path string
	pos  token.Position
}

// fileImports returns the imports of the Go file at path when it belongs
// to package name or its external test package (a `package main` generator
// beside it does not).
func fileImports(path, name string) ([]fileImport, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	if name != "" && f.Name.Name != name && f.Name.Name != name+"_test" {
		return nil, nil
	}
	var out []fileImport
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, fileImport{p, fset.Position(s.Pos())})
	}
	return out, nil
}

// where names the files (and lines) of package from that import to.
func (g *graph) where(from, to string, test bool) string {
	l := g.listed[from]
	var names []string
	if test {
		names = append(slices.Clone(l.TestGoFiles), l.XTestGoFiles...)
	} else {
		names = append(slices.Clone(l.GoFiles), l.CgoFiles...)
	}
	for _, n := range l.IgnoredGoFiles {
		if strings.HasSuffix(n, "_test.go") == test {
			names = append(names, n)
		}
	}
	var at []string
	for _, n := range names {
		imps, _ := fileImports(filepath.Join(l.Dir, n), l.Name)
		for _, imp := range imps {
			if r, ok := g.rel(imp.path); ok && r == to {
				file, err := filepath.Rel(g.modDir, imp.pos.Filename)
				if err != nil {
					file = imp.pos.Filename
				}
				at = append(at, fmt.Sprintf("%s:%d", filepath.ToSlash(file), imp.pos.Line))
			}
		}
	}
	return strings.Join(at, ", ")
}

func load(t *testing.T) *graph {
	t.Helper()
	g, err := loadGraph()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestImportRules holds the module's real import graph to the rules, one
// subtest per rule.
func TestImportRules(t *testing.T) {
	g := load(t)
	f := check(g.pkgs)
	for _, r := range rules {
		t.Run(string(r.from), func(t *testing.T) {
			for _, v := range f.violations {
				if v.rule.from != r.from {
					continue
				}
				what := "imports"
				if v.test {
					what = "imports in its tests"
				}
				t.Errorf("%s (%s) %s %s/%s (%s) at %s: %s", v.from, r.from, what, g.modPath, v.to, rooms[roomOf(v.to)].kind,
					g.where(v.from, v.to, v.test), r.why)
			}
		})
	}
	t.Run("test exemptions", func(t *testing.T) {
		for _, i := range f.unused {
			e := testExemptions[i]
			t.Errorf("no test of %s imports %s any more: remove its exemption from testExemptions", e.from, e.to)
		}
	})
}

// TestRoomsCoverTheModule fails when a package is in no room (a new
// top-level directory must say which rules it keeps) or a room has no
// package (a renamed one would escape the rules).
func TestRoomsCoverTheModule(t *testing.T) {
	f := check(load(t).pkgs)
	for _, p := range f.homeless {
		t.Errorf("package %q is in no room: add a row to rooms in internal/archtest/arch_test.go", p)
	}
	for _, r := range f.empty {
		t.Errorf("room %q has no package: rename or remove its row in rooms", r)
	}
}

// TestCheckCatches shows check reports each kind of crossing on a made-up
// graph, and lets only the listed test imports through.
func TestCheckCatches(t *testing.T) {
	f := check([]pkg{
		{path: "domain", imports: []string{"outbox"}},
		{path: "domain/dbtest", imports: []string{"domain"}},
		{path: "outbox", imports: []string{"domain"}},
		{path: "gateway", imports: []string{"domain", "chat"}, testImports: []string{"gateway/pusher"}},
		{path: "gateway/pusher", imports: []string{"gateway", "gateway/centrifuge"}},
		{path: "gateway/centrifuge", imports: []string{"gateway"}, testImports: []string{"outbox"}},
		{path: "gateway/actioncable", imports: []string{"gateway"}},
		{path: "attendees", imports: []string{"domain"}},
		{path: "access", imports: []string{"domain", "gateway/actioncable"}, testImports: []string{"attendees", "domain/dbtest", "internal/apitest"}},
		{path: "social", imports: []string{"domain"}, testImports: []string{"chat"}},
		{path: "games", imports: []string{"domain", "attendees"}, testImports: []string{"attendees"}},
		{path: "forms", imports: []string{"domain", "console"}},
		{path: "chat", imports: []string{"domain"}},
		{path: "notifications", imports: []string{"domain"}},
		{path: "pubsub", imports: []string{"domain"}},
		{path: "internal/apitest", imports: []string{"domain", "domain/dbtest"}},
		{path: "cmd/switchboard", imports: []string{"access", "gateway/pusher", "outbox"}},
		{path: "examples"},
		{path: "openapi", imports: []string{"attendees", "gateway/webhooks"}},
		{path: "bench/load"},
		{path: "internal/faultproxy"},
		{path: "metrics", imports: []string{"domain", "gateway", "outbox", "gateway/pusher"}},
		{path: "console", imports: []string{"domain", "gateway", "gateway/webhooks", "gateway/pusher"}},
		{path: "nowhere", imports: []string{"domain"}},
	})
	var got []string
	for _, v := range f.violations {
		got = append(got, fmt.Sprintf("%s->%s test=%v", v.from, v.to, v.test))
	}
	want := []string{
		"domain->outbox test=false",
		"gateway->chat test=false",
		"gateway/pusher->gateway/centrifuge test=false",
		"access->gateway/actioncable test=false",
		"social->chat test=true",
		"games->attendees test=false",
		"forms->console test=false",
		"metrics->gateway/pusher test=false",
		"console->gateway/pusher test=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(f.homeless, []string{"nowhere"}) {
		t.Errorf("homeless = %q, want [nowhere]", f.homeless)
	}
	var unused []string
	for _, i := range f.unused {
		unused = append(unused, testExemptions[i].from+"->"+testExemptions[i].to)
	}
	if want := []string{"forms->attendees", "attendees->gateway", "attendees->outbox"}; !slices.Equal(unused, want) {
		t.Errorf("unused exemptions = %q, want %q", unused, want)
	}
	if len(f.empty) != 0 {
		t.Errorf("empty rooms = %q", f.empty)
	}
}
