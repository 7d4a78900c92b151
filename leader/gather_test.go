package leader

import (
	"testing"
	"time"
)

func TestGatherFor(t *testing.T) {
	ms := time.Millisecond
	spell := gather{quiet: gatherLeast, most: gatherMost, blind: gatherLeast}
	burst := gather{quiet: gatherQuiet, most: gatherMost, blind: gatherMost}
	for _, c := range []struct {
		name  string
		since time.Duration
		want  gather
	}{
		{"first pass: until one command's writes end", 1000 * time.Hour, spell},
		{"after a quiet spell: until one command's writes end", gatherSpell + ms, spell},
		{"during a burst: until the submits pause", 40 * ms, burst},
		{"at the spell's edge, still a burst", gatherSpell, burst},
	} {
		if got := gatherFor(c.since); got != c.want {
			t.Errorf("%s: gatherFor(%s) = %+v; want %+v", c.name, c.since, got, c.want)
		}
	}
	if gatherQuiet >= gatherMost || gatherLeast > gatherQuiet {
		t.Errorf("gatherLeast %s <= gatherQuiet %s < gatherMost %s does not hold", gatherLeast, gatherQuiet, gatherMost)
	}
}
