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
		most, quiet time.Duration
	}{
		{"first pass", 0, 1000 * time.Hour, gatherLeast, gatherLeast},
		{"after quick passes", 10 * ms, 20 * ms, gatherLeast, gatherLeast},
		{"during a burst: as long as the last pass, a quarter of it quiet", 400 * ms, 40 * ms, 400 * ms, 100 * ms},
		{"never more than the most", 5 * time.Second, 40 * ms, gatherMost, gatherMost / 4},
		{"quiet never less than the least", 120 * ms, 40 * ms, 120 * ms, gatherLeast},
		{"after a quiet spell, however long the last pass", 5 * time.Second, 2 * time.Second, gatherLeast, gatherLeast},
	} {
		if most, quiet := gatherFor(c.last, c.since); most != c.most || quiet != c.quiet {
			t.Errorf("%s: gatherFor(%s, %s) = %s, %s; want %s, %s", c.name, c.last, c.since, most, quiet, c.most, c.quiet)
		}
	}
}
