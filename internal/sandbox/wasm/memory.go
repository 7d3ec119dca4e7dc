package wasm

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// pageSize is the size of a WebAssembly page.
const pageSize = 64 << 10

// memoryMeter is the memory allocator of one run. It backs the run's
// linear memory with Go slices, refuses to grow past the run's limit (the
// guest's memory.grow then yields -1) and records the peak size and whether
// a grow was refused.
type memoryMeter struct {
	limit   uint64 // bytes
	peak    atomic.Uint64
	refused atomic.Bool
}

// Allocate implements experimental.MemoryAllocator.
func (m *memoryMeter) Allocate(_, max uint64) experimental.LinearMemory {
	return &linearMemory{meter: m, max: min(max, m.limit)}
}

// linearMemory is one linear memory allocated by a memoryMeter.
type linearMemory struct {
	meter *memoryMeter
	max   uint64
	buf   []byte
}

// Reallocate implements experimental.LinearMemory. Linear memory never
// shrinks, so bytes between len and cap were never handed out and are still
// zero.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.max {
		l.meter.refused.Store(true)
		return nil
	}
	if size > uint64(cap(l.buf)) {
		// Grow geometrically to keep repeated small grows cheap, but never
		// reserve more than the limit allows.
		newCap := min(max(size, 2*uint64(cap(l.buf))), l.max)
		grown := make([]byte, size, newCap)
		copy(grown, l.buf)
		l.buf = grown
	} else {
		l.buf = l.buf[:size]
	}
	for {
		peak := l.meter.peak.Load()
		if size <= peak || l.meter.peak.CompareAndSwap(peak, size) {
			break
		}
	}
	return l.buf
}

// Free implements experimental.LinearMemory.
func (l *linearMemory) Free() { l.buf = nil }
