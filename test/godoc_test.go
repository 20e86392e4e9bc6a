package test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocsNameTheirExamples: a reader of `go doc <package>` sees
// the package comment first, and the runnable Examples only with -all or on
// pkg.go.dev: every public constructs package names each Example of its
// example_test.go in its package comment. No package comment of theirs
// sends the reader to an internal package, which they cannot import.
func TestPackageDocsNameTheirExamples(t *testing.T) {
	dirs, err := filepath.Glob("../constructs/*")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, dir := range dirs {
		if filepath.Base(dir) == "internal" {
			continue
		}
		fset := token.NewFileSet()
		var doc string
		var examples []string
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(e.Name(), "_test.go") {
				for _, d := range f.Decls {
					if fn, ok := d.(*ast.FuncDecl); ok && strings.HasPrefix(fn.Name.Name, "Example") {
						examples = append(examples, fn.Name.Name)
					}
				}
			} else if f.Doc != nil {
				doc += f.Doc.Text()
			}
		}
		name := "constructs/" + filepath.Base(dir)
		if doc == "" {
			t.Errorf("%s has no package comment", name)
			continue
		}
		checked++
		for _, ex := range examples {
			if !strings.Contains(doc, ex) {
				t.Errorf("%s's package comment does not name its runnable %s", name, ex)
			}
		}
		if strings.Contains(doc, "internal/") {
			t.Errorf("%s's package comment sends readers to an internal package:\n%s", name, doc)
		}
	}
	if checked < 6 {
		t.Errorf("checked %d packages under constructs/, want the 7 public ones", checked)
	}
}
