package postgres

import (
	"testing"

	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
	"github.com/wardhq/ward/internal/store/storetest"
)

// BenchmarkTaskCounts is storetest.BenchTaskCounts on a fresh store.
func BenchmarkTaskCounts(b *testing.B) {
	storetest.BenchTaskCounts(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), pgtest.DSN(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
