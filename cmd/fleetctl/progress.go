package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// liveLine is the progress line a blocking command keeps rewritten in place
// on a terminal ("waiting: 7/20 units launched"). It is drawn only when both
// stdout and stderr are terminals, so scripts, pipes and tests see fleet's
// output and nothing else. It goes to stderr; fleet's lines go around it.
type liveLine struct {
	w     io.Writer // stderr, or nil when nothing is to be drawn
	text  string    // what the line says; "" when there is no line
	drawn int       // width of what is on the screen now, 0 when erased
}

// newLiveLine returns a line drawn on stderr when stdout and stderr are
// both terminals, and a line that draws nothing otherwise.
func newLiveLine(stdout, stderr io.Writer) *liveLine {
	if isTerminal(stdout) && isTerminal(stderr) {
		return &liveLine{w: stderr}
	}
	return &liveLine{}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// set replaces the line's text and redraws it; "" erases it.
func (l *liveLine) set(text string) {
	if l.w == nil || (text == l.text && l.drawn == len(text)) {
		return // nothing to draw, or already on the screen
	}
	l.text = text
	l.draw()
}

// current is the line's text, for a caller that changes it and puts it back.
func (l *liveLine) current() string { return l.text }

// draw writes the text over what is on the screen, padding with spaces what
// a longer earlier text left, without terminal escape codes.
func (l *liveLine) draw() {
	pad := max(l.drawn-len(l.text), 0)
	fmt.Fprint(l.w, "\r"+l.text+strings.Repeat(" ", pad))
	if pad > 0 || l.text == "" {
		fmt.Fprint(l.w, "\r"+l.text)
	}
	l.drawn = len(l.text)
}

// erase takes the line off the screen, keeping its text.
func (l *liveLine) erase() {
	if l.w == nil || l.drawn == 0 {
		return
	}
	fmt.Fprint(l.w, "\r"+strings.Repeat(" ", l.drawn)+"\r")
	l.drawn = 0
}

// printf prints one of fleet's lines to w with the live line kept below it.
func (l *liveLine) printf(w io.Writer, format string, a ...any) {
	l.erase()
	fmt.Fprintf(w, format, a...)
	if l.w != nil && l.text != "" {
		l.draw()
	}
}
