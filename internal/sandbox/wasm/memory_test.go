package wasm

import (
	"sync"
	"testing"
)

func TestMemoryMeter(t *testing.T) {
	t.Parallel()
	pool := &sync.Pool{New: func() any { return new(page) }}
	m := &memoryMeter{limit: 4 * pageSize, pages: pool}
	l := m.Allocate(pageSize, 100*pageSize)

	buf := l.Reallocate(pageSize)
	if len(buf) != pageSize {
		t.Fatalf("first Reallocate gave %d bytes", len(buf))
	}
	buf[0], buf[pageSize-1] = 1, 2
	grown := l.Reallocate(3 * pageSize)
	if len(grown) != 3*pageSize || grown[0] != 1 || grown[pageSize-1] != 2 {
		t.Fatalf("grow lost the contents or has the wrong size (%d)", len(grown))
	}
	for i, b := range grown[pageSize:] {
		if b != 0 {
			t.Fatalf("grown byte %d = %d, want 0", pageSize+i, b)
		}
	}
	if got := l.Reallocate(4 * pageSize); len(got) != 4*pageSize {
		t.Fatalf("grow to the limit gave %d bytes", len(got))
	}
	if m.refused.Load() {
		t.Fatal("refused before the limit")
	}
	if got := l.Reallocate(5 * pageSize); got != nil {
		t.Fatalf("grow past the limit gave %d bytes, want nil", len(got))
	}
	if !m.refused.Load() || m.peak.Load() != 4*pageSize {
		t.Errorf("refused = %v, peak = %d; want true, %d", m.refused.Load(), m.peak.Load(), 4*pageSize)
	}

	// The module's own maximum below the limit caps it too.
	small := m.Allocate(0, 2*pageSize)
	if small.Reallocate(2*pageSize) == nil || small.Reallocate(3*pageSize) != nil {
		t.Error("the module's maximum was not applied")
	}

	// Pages return zeroed to the pool once the run is over.
	p := m.Allocate(pageSize, pageSize).Reallocate(pageSize)
	p[10] = 7
	m.recycle()
	reused := m.Allocate(pageSize, pageSize).Reallocate(pageSize)
	for i, b := range reused {
		if b != 0 {
			t.Fatalf("recycled page byte %d = %d, want 0", i, b)
		}
	}
	l.Free()
}
