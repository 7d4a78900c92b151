// Package starter writes what a policy author starts from: a Go module with
// a working placement policy, its test, and a copy of the SDK this fleet
// speaks, so the module builds offline with the standard Go toolchain
// ("fleetctl policy new", "fleetctl policy sdk").
package starter

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// SDKDir is where a policy module keeps its copy of the SDK; its go.mod
// points the SDK's module path there.
const SDKDir = "fleet-sdk"

// SDKModule is the SDK's module path.
const SDKModule = "github.com/wasmfleet/fleet/sdk"

// sdkArchive is the SDK's source as of this build, written by go generate
// from the repository's sdk/ (TestSDKCopyCurrent keeps it so).
//
//go:generate go test -run TestSDKCopyCurrent -update .
//go:embed sdk.txtar
var sdkArchive []byte

//go:embed template
var templates embed.FS

// BuildCommand builds the module in the current directory into out.
func BuildCommand(out string) string {
	return "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o " + out + " ."
}

// New writes a policy module named name into dir, which must not exist or
// be empty: nothing of the author's is overwritten.
func New(dir, name string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty; name a new directory (fleetctl policy new %s DIR)", dir, name)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	sdk, err := parseArchive(sdkArchive)
	if err != nil {
		return err
	}
	goLine := goDirective(sdk["go.mod"])
	files := map[string][]byte{}
	err = fs.WalkDir(templates, "template", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, []byte("NAME"), []byte(name))
		b = bytes.ReplaceAll(b, []byte("GOVERSION"), []byte(goLine))
		b = bytes.ReplaceAll(b, []byte("BUILD"), []byte(BuildCommand(name+".wasm")))
		files[strings.TrimSuffix(strings.TrimPrefix(p, "template/"), ".tmpl")] = b
		return nil
	})
	if err != nil {
		return err
	}
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	return writeSDK(dir, sdk)
}

// WriteSDK writes the SDK into dir/fleet-sdk, replacing a copy written
// earlier (a policy rebuilt against it speaks this fleet's ABI version).
// It refuses to replace a directory that is not such a copy.
func WriteSDK(dir string) error {
	sdk, err := parseArchive(sdkArchive)
	if err != nil {
		return err
	}
	return writeSDK(dir, sdk)
}

// writeSDK writes sdk, the archive's files, as WriteSDK says.
func writeSDK(dir string, sdk map[string][]byte) error {
	target := filepath.Join(dir, SDKDir)
	if b, err := os.ReadFile(filepath.Join(target, "go.mod")); err == nil {
		if goModule(b) != SDKModule {
			return fmt.Errorf("%s holds something other than fleet's SDK (its go.mod is not %s); move it away first", target, SDKModule)
		}
		if err := os.RemoveAll(target); err != nil {
			return err
		}
	} else if _, err := os.Stat(target); err == nil {
		return fmt.Errorf("%s exists and is not a copy of fleet's SDK; move it away first", target)
	}
	sdk["README.md"] = []byte(fmt.Sprintf(sdkReadme, wire.Version))
	return writeFiles(target, sdk)
}

const sdkReadme = `# fleet's policy SDK (ABI version %d)

A copy of the SDK that the fleetctl which wrote it speaks, so that the policy
beside it builds offline; the policy's go.mod points the SDK's module path
here. Do not edit it: "fleetctl policy sdk DIR" writes it again, for the
fleet a policy is rebuilt for.
`

func writeFiles(dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// goModule is the module path a go.mod declares.
func goModule(gomod []byte) string { return strings.Trim(directive(gomod, "module"), `"`) }

// goDirective is the go line's version of a go.mod.
func goDirective(gomod []byte) string {
	if v := directive(gomod, "go"); v != "" {
		return v
	}
	return "1.26"
}

// directive is the value of a go.mod's first line naming it, "" for none.
func directive(gomod []byte, name string) string {
	for _, l := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), name+" "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// The archive is text: each file is a line "-- path --" and its content.

func parseArchive(a []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	var name string
	var body bytes.Buffer
	flush := func() {
		if name != "" {
			files[name] = bytes.Clone(body.Bytes())
		}
		body.Reset()
	}
	for _, line := range bytes.SplitAfter(a, []byte("\n")) {
		if n, ok := archiveHeader(line); ok {
			flush()
			name = n
			continue
		}
		body.Write(line)
	}
	flush()
	if files["go.mod"] == nil || goModule(files["go.mod"]) != SDKModule {
		return nil, errors.New("starter: the embedded SDK has no go.mod for " + SDKModule)
	}
	return files, nil
}

func archiveHeader(line []byte) (string, bool) {
	s := strings.TrimSuffix(string(line), "\n")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	return path.Clean(s[3 : len(s)-3]), true
}

func formatArchive(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "-- %s --\n", n)
		b.Write(files[n])
	}
	return b.Bytes()
}
