package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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

// TestLiveLineOnTerminal checks the choice itself: a pseudo-terminal gets
// the line, /dev/null (a character device, yet no terminal) does not.
func TestLiveLineOnTerminal(t *testing.T) {
	pts := openPTY(t)
	if l := newLiveLine(pts, pts); l.w != pts {
		t.Errorf("a terminal gets no line (w = %v)", l.w)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, pair := range [][2]*os.File{{null, null}, {pts, null}, {null, pts}} {
		if l := newLiveLine(pair[0], pair[1]); l.w != nil {
			t.Errorf("stdout %s, stderr %s: a line is drawn", pair[0].Name(), pair[1].Name())
		}
	}
}

// openPTY opens a pseudo-terminal and returns its terminal end; both ends
// are closed when the test ends.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's terminal end: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}
