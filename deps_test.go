package pando_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootPackageImportsNoInfrastructure keeps the domain package free of
// transport, storage and runtime dependencies: those live in internal/
// behind the interfaces declared here.
func TestRootPackageImportsNoInfrastructure(t *testing.T) {
	allowed := map[string]bool{"context": true, "errors": true, "fmt": true, "io": true, "time": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if !allowed[path] {
				t.Errorf("%s imports %s: the root package holds domain types only", f, path)
			}
		}
	}
}

// TestEveryPackageSaysWhatItIsFor checks that each package has a doc
// comment explaining its job.
func TestEveryPackageSaysWhatItIsFor(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); p != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "docs") {
			return filepath.SkipDir
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		sources, documented := 0, false
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			sources++
			f, err := parser.ParseFile(fset, filepath.Join(p, name), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				return err
			}
			if f.Doc != nil && len(strings.TrimSpace(f.Doc.Text())) > 20 {
				documented = true
			}
		}
		if sources > 0 && !documented {
			t.Errorf("package in %s has no package doc comment", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
