package wasm

import (
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// pageSize is the size of a WebAssembly page.
const pageSize = 64 << 10

// page is the backing array of a one-page linear memory.
type page = [pageSize]byte

// memoryMeter is the memory allocator of one run. It backs the run's
// linear memory with Go slices, refuses to grow past the run's limit (the
// guest's memory.grow then yields -1) and records the peak size and whether
// a grow was refused.
//
// Small tasks need one page, and allocating (then collecting) 64 KiB per
// run is a large part of their cost, so one-page memories come from pages,
// a pool shared by all runs. A page goes back to the pool only through
// recycle, called once the run is over, never through wazero's Free:
// wazero frees the memories of every instance when the runtime closes,
// possibly while a guest is still running.
type memoryMeter struct {
	limit   uint64 // bytes
	pages   *sync.Pool
	peak    atomic.Uint64
	refused atomic.Bool

	mu   sync.Mutex
	mems []*linearMemory
}

// Allocate implements experimental.MemoryAllocator.
func (m *memoryMeter) Allocate(_, max uint64) experimental.LinearMemory {
	l := &linearMemory{meter: m, max: min(max, m.limit)}
	m.mu.Lock()
	m.mems = append(m.mems, l)
	m.mu.Unlock()
	return l
}

// recycle returns the run's pooled pages, zeroed, to the pool. It must be
// called only after the run's instance has stopped for good.
func (m *memoryMeter) recycle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.mems {
		if l.page != nil {
			clear(l.page[:])
			m.pages.Put(l.page)
			l.page, l.buf = nil, nil
		}
	}
	m.mems = nil
}

// linearMemory is one linear memory allocated by a memoryMeter.
type linearMemory struct {
	meter *memoryMeter
	max   uint64
	buf   []byte
	page  *page // the pooled page behind buf, if buf started as one
}

// Reallocate implements experimental.LinearMemory. Linear memory never
// shrinks, so bytes between len and cap were never handed out and are still
// zero.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.max {
		l.meter.refused.Store(true)
		return nil
	}
	if l.buf == nil && size <= pageSize && l.max >= pageSize && l.meter.pages != nil {
		l.page = l.meter.pages.Get().(*page) // zeroed by recycle or new
		l.buf = l.page[:size:pageSize]
	} else if size > uint64(cap(l.buf)) {
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

// Free implements experimental.LinearMemory. It does nothing: wazero may
// call it from another goroutine while the guest still runs (when the
// runtime closes), and the buffer is garbage, or recycled, once the run is
// over anyway.
func (l *linearMemory) Free() {}
