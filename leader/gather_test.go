package leader

import (
	"testing"
	"time"
)

func TestGatherFor(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name        string
		since       time.Duration
		most, quiet time.Duration
	}{
		{"first pass", 1000 * time.Hour, gatherLeast, gatherLeast},
		{"after a quiet spell", gatherSpell + ms, gatherLeast, gatherLeast},
		{"during a burst: until the submits pause", 40 * ms, gatherMost, gatherQuiet},
		{"at the spell's edge, still a burst", gatherSpell, gatherMost, gatherQuiet},
	} {
		if most, quiet := gatherFor(c.since); most != c.most || quiet != c.quiet {
			t.Errorf("%s: gatherFor(%s) = %s, %s; want %s, %s", c.name, c.since, most, quiet, c.most, c.quiet)
		}
	}
	if gatherQuiet >= gatherMost || gatherLeast > gatherQuiet {
		t.Errorf("gatherLeast %s <= gatherQuiet %s < gatherMost %s does not hold", gatherLeast, gatherQuiet, gatherMost)
	}
}
