package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func main() {
	o := options{platforms: releasePlatforms}
	flag.StringVar(&o.version, "version", "", "the release's version, vMAJOR.MINOR.PATCH with an optional -suffix")
	flag.StringVar(&o.out, "out", "dist", "where the tarballs and SHA256SUMS are written; the release files already there are replaced")
	flag.StringVar(&o.root, "root", ".", "the repository's top directory")
	flag.BoolVar(&o.allowDirty, "allow-dirty", false, "build from a working tree with changes; the commit is stamped <hash>-dirty")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "release: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	r, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
	fmt.Printf("fleet %s (commit %s) in %s:\n", o.version, r.src.commit, o.out)
	for _, f := range append(r.tarballs, sumsFile) {
		fmt.Printf("  %s\n", f)
	}
}
