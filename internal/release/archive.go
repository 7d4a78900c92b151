package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// entry is one member of a tarball.
type entry struct {
	name string // slash-separated; a directory's ends in "/"
	path string // the file whose bytes it holds; "" for a directory
	dir  bool
	exec bool // mode 0755 rather than 0644
}

// writeTarball writes entries to path as a gzipped tar that depends on
// nothing but their names, modes and bytes and on mtime: members sorted
// by name, each with mtime as its modification time, owned by root
// (uid and gid 0), mode 0755 for directories and executables and 0644 for
// the rest; the gzip header has no name and no time.
func writeTarball(path string, entries []entry, mtime time.Time) (err error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := writeEntry(tw, e, mtime); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// writeEntry writes one member's header and, for a file, its bytes.
func writeEntry(tw *tar.Writer, e entry, mtime time.Time) error {
	h := &tar.Header{Name: e.name, Mode: 0o644, ModTime: mtime.Truncate(time.Second), Uname: "root", Gname: "root",
		Typeflag: tar.TypeReg}
	if e.dir || e.exec {
		h.Mode = 0o755
	}
	if e.dir {
		h.Typeflag = tar.TypeDir
		return tw.WriteHeader(h)
	}
	src, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	h.Size = fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(tw, src)
	if err == nil && n != h.Size {
		err = fmt.Errorf("%s changed while it was read", e.path)
	}
	return err
}

// writeSums writes dir/SHA256SUMS over files in dir, in the format
// sha256sum writes and sha256sum -c reads: "<hex>  <name>" per line.
func writeSums(dir string, files []string) error {
	var b strings.Builder
	for _, name := range slices.Sorted(slices.Values(files)) {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	return os.WriteFile(filepath.Join(dir, sumsFile), []byte(b.String()), 0o644)
}

// fileSHA256 is the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isReleaseFile reports whether a file in the output directory is one a
// release writes, which the next release replaces.
func isReleaseFile(name string) bool {
	return name == sumsFile || strings.HasPrefix(name, "fleet-") && strings.HasSuffix(name, ".tar.gz")
}

// replaceRelease makes out hold exactly files, moved from scratch: the
// release files of an earlier build in out are removed first. Anything
// else in out is left alone and stops the release, so that -out pointed
// at the wrong directory deletes nothing.
func replaceRelease(out, scratch string, files []string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	old, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, d := range old {
		if !isReleaseFile(d.Name()) || !d.Type().IsRegular() {
			return fmt.Errorf("%s holds %s, which no release writes: give -out an empty directory or one holding only an earlier release", out, d.Name())
		}
	}
	for _, d := range old {
		if err := os.Remove(filepath.Join(out, d.Name())); err != nil {
			return err
		}
	}
	for _, name := range files {
		if err := moveFile(filepath.Join(scratch, name), filepath.Join(out, name)); err != nil {
			return err
		}
	}
	return nil
}

// moveFile renames from to to, copying where they are on different file
// systems (the scratch directory is under the system's temporary one).
func moveFile(from, to string) error {
	if os.Rename(from, to) == nil {
		return nil
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
