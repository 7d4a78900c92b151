package agent

import (
	"sort"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// Want is what the cluster asks of this machine for one unit.
type Want struct {
	Unit     *unitfile.File
	Hash     unitfile.Hash
	Launched bool // started, not only loaded
}

// Have is what this machine has done for one unit.
type Have struct {
	Hash     unitfile.Hash
	Launched bool
}

// TaskKind is one step the agent takes on a unit.
type TaskKind int

// Task kinds, in the order they run: removing units first frees what new
// units may need (a port, a Conflicts partner), then loads, stops, starts.
const (
	Unload TaskKind = iota + 1
	Load
	Stop
	Start
)

func (k TaskKind) String() string {
	return [...]string{"", "unload", "load", "stop", "start"}[k]
}

// Task is one driver call.
type Task struct {
	Kind TaskKind
	Name string
	Want Want // for Load
}

// Plan returns the driver calls that turn have into want, in order.
// A changed body (new hash) means unload, then load, then start if launched.
func Plan(want map[string]Want, have map[string]Have) []Task {
	var tasks []Task
	for name, h := range have {
		w, ok := want[name]
		if !ok || w.Hash != h.Hash {
			tasks = append(tasks, Task{Kind: Unload, Name: name})
		}
	}
	for name, w := range want {
		h, ok := have[name]
		if !ok || h.Hash != w.Hash {
			tasks = append(tasks, Task{Kind: Load, Name: name, Want: w})
			if w.Launched {
				tasks = append(tasks, Task{Kind: Start, Name: name})
			}
			continue
		}
		switch {
		case w.Launched && !h.Launched:
			tasks = append(tasks, Task{Kind: Start, Name: name})
		case !w.Launched && h.Launched:
			tasks = append(tasks, Task{Kind: Stop, Name: name})
		}
	}
	sort.SliceStable(tasks, func(i, j int) bool {
		if tasks[i].Kind != tasks[j].Kind {
			return tasks[i].Kind < tasks[j].Kind
		}
		return tasks[i].Name < tasks[j].Name
	})
	return tasks
}
