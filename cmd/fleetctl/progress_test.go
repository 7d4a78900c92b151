package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestLiveLine checks what a terminal receives: the line rewritten in place
// with \r, padded over a longer earlier text, and taken off the screen
// around fleet's own lines and at the end.
func TestLiveLine(t *testing.T) {
	var screen, out bytes.Buffer
	l := &liveLine{w: &screen}
	l.set("waiting: 0/12 units launched")
	l.printf(&out, "Unit a.service launched on m\n")
	l.set("waiting: 1/2 units loaded")
	l.set("waiting: 1/2 units loaded") // unchanged: not drawn again
	l.set("")
	l.set("")
	want := "\rwaiting: 0/12 units launched" +
		"\r                            \r" + // erased for fleet's line
		"\rwaiting: 0/12 units launched" + // drawn again below it
		"\rwaiting: 1/2 units loaded   \rwaiting: 1/2 units loaded" +
		"\r                         \r"
	if screen.String() != want {
		t.Errorf("terminal got %q\nwant %q", screen.String(), want)
	}
	if out.String() != "Unit a.service launched on m\n" {
		t.Errorf("stdout got %q", out.String())
	}
}

// TestLiveLineOffTerminal checks that nothing is drawn unless stdout and
// stderr are both terminals: buffers and files get fleet's lines only.
func TestLiveLineOffTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	for _, l := range []*liveLine{newLiveLine(&b, &b), newLiveLine(f, f)} {
		l.set("waiting: 1/2 units launched")
		l.printf(&b, "Unit a.service launched on m\n")
		l.set("")
	}
	if b.String() != "Unit a.service launched on m\nUnit a.service launched on m\n" {
		t.Errorf("got %q", b.String())
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("the file got %d bytes", st.Size())
	}
}
