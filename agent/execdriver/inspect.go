package execdriver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmfleet/fleet/agent"
)

// Status writes a systemctl-like status of the unit.
func (d *Driver) Status(_ context.Context, name string, w io.Writer) error {
	u, err := d.get(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	st, since, pid := u.state, u.since, 0
	if u.proc != nil {
		pid = u.proc.Pid
	}
	d.mu.Unlock()
	desc := name
	if v := u.file.Values("Unit", "Description"); len(v) > 0 {
		desc = v[len(v)-1]
	}
	fmt.Fprintf(w, "● %s - %s\n", name, desc)
	fmt.Fprintf(w, "     Loaded: %s (%s)\n", st.Load, filepath.Join(d.unitsDir, name))
	fmt.Fprintf(w, "     Active: %s (%s)", st.Active, st.Sub)
	if !since.IsZero() {
		fmt.Fprintf(w, " since %s; %s ago", since.Format("Mon 2006-01-02 15:04:05 MST"), time.Since(since).Round(time.Second))
	}
	fmt.Fprintln(w)
	if pid != 0 {
		fmt.Fprintf(w, "   Main PID: %d\n", pid)
	}
	fmt.Fprintln(w)
	return d.tail(name, 10, w)
}

// tail writes the last n lines of the unit's output.
func (d *Driver) tail(name string, n int, w io.Writer) error {
	b, err := os.ReadFile(filepath.Join(d.logsDir, name+".log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		if _, err := w.Write(l); err != nil {
			return err
		}
	}
	return nil
}

// Journal writes the unit's last lines of output, and with follow keeps
// writing what it adds until ctx is done.
func (d *Driver) Journal(ctx context.Context, name string, q agent.JournalQuery, w io.Writer) error {
	lines, follow := q.Lines, q.Follow
	if _, err := d.get(name); err != nil {
		return err
	}
	path := filepath.Join(d.logsDir, name+".log")
	var offset int64
	if fi, err := os.Stat(path); err == nil {
		offset = fi.Size()
	}
	if err := d.tail(name, lines, w); err != nil || !follow {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if _, err := f.Seek(offset, io.SeekStart); err == nil {
			n, werr := io.Copy(w, f)
			offset += n
			if werr != nil {
				f.Close()
				return werr
			}
		}
		f.Close()
	}
}
