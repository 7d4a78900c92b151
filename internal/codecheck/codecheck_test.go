package codecheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's top directory.
const root = "../.."

// maxLines is how long a function may be without saying why.
const maxLines = 80

// sources calls f for every file under root whose name ends in one of
// suffixes, skipping testdata, the git directory and build output.
func sources(t *testing.T, f func(path string), suffixes ...string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", ".git", "bin", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		for _, s := range suffixes {
			if strings.HasSuffix(p, s) {
				f(p)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFunctionLength: no function outside tests is over maxLines lines
// unless its doc comment has a "# Length" section saying why: a reader can
// hold a function in mind only so far, and a long one should be split into
// named steps.
func TestFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	n := 0
	sources(t, func(p string) {
		if strings.HasSuffix(p, "_test.go") {
			return
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n++
			lines := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if lines > maxLines && (fd.Doc == nil || !strings.Contains(fd.Doc.Text(), "\n# Length\n")) {
				t.Errorf("%s: %s is %d lines (over %d): split it into named steps, or say why not in a \"# Length\" section of its doc comment",
					fset.Position(fd.Pos()), fd.Name.Name, lines, maxLines)
			}
		}
	}, ".go")
	if n < 500 {
		t.Fatalf("found only %d functions under %s: the walk is looking in the wrong place", n, root)
	}
}

// history is what documents, comments and the Makefile do not say: an
// issue of this project by number (a reader cannot look it up; upstream
// trackers, "fleet #1143", are fine), or a date with what was true until
// then.
var history = regexp.MustCompile(`(?i)\bissue [0-9]+\b|\buntil 20[0-9]{2}-[0-9]{2}-[0-9]{2}|\bbefore 20[0-9]{2}-[0-9]{2}-[0-9]{2}\b`)

// TestNoHistory: documents are references, not lab notebooks. What was
// true before and why it changed lives in git.
func TestNoHistory(t *testing.T) {
	n := 0
	sources(t, func(p string) {
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			return
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(p, ".go") && !strings.Contains(line, "//") {
				continue // comments only: code may say what it likes
			}
			if m := history.FindString(line); m != "" {
				t.Errorf("%s:%d: %q: say what is true now; history belongs in git", p, i+1, m)
			}
		}
	}, ".go", ".md", "Makefile", ".sh", ".hcl", ".yaml", ".service")
	if n < 100 {
		t.Fatalf("found only %d files under %s", n, root)
	}
}
