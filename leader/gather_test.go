package leader

import (
	"testing"
	"time"
)

func TestGatherFor(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name        string
		last, since time.Duration
		want        time.Duration
	}{
		{"first pass", 0, 1000 * time.Hour, gatherLeast},
		{"after quick passes", 10 * ms, 20 * ms, gatherLeast},
		{"during a burst: as long as the last pass", 300 * ms, 40 * ms, 300 * ms},
		{"never more than the most", 5 * time.Second, 40 * ms, gatherMost},
		{"after a quiet spell, however long the last pass", 5 * time.Second, 2 * time.Second, gatherLeast},
	} {
		if got := gatherFor(c.last, c.since); got != c.want {
			t.Errorf("%s: gatherFor(%s, %s) = %s, want %s", c.name, c.last, c.since, got, c.want)
		}
	}
}
