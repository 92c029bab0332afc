package experiments

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// The sticky memory is a hand-written set of locked maps on the assignment path; these compare
// it with sync.Map, the library it would otherwise be (docs/benchmarks.md, "Sticky bandits").

const stickyBenchShoppers = 1 << 18

func stickyIDs() []string {
	ids := make([]string, stickyBenchShoppers)
	for i := range ids {
		ids[i] = fmt.Sprintf("shopper-%08d", i)
	}
	return ids
}

func BenchmarkStickyTable(b *testing.B) {
	ids := stickyIDs()
	t, _ := NewSticky(0, nil).table("bx", 1)
	for i, id := range ids {
		t.put(id, i%3)
	}
	b.Run("get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				t.get(ids[i&(stickyBenchShoppers-1)])
				i += 7919
			}
		})
	})
	b.Run("put-new", func(b *testing.B) {
		fresh, _ := NewSticky(1<<30, nil).table("bx", 1)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				fresh.put(ids[i&(stickyBenchShoppers-1)], 1)
				i += 7919
			}
		})
	})
}

func BenchmarkStickySyncMap(b *testing.B) {
	ids := stickyIDs()
	var m sync.Map
	for i, id := range ids {
		m.Store(id, uint8(i%3))
	}
	b.Run("get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.Load(ids[i&(stickyBenchShoppers-1)])
				i += 7919
			}
		})
	})
	b.Run("put-new", func(b *testing.B) {
		var fresh sync.Map
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				fresh.LoadOrStore(ids[i&(stickyBenchShoppers-1)], uint8(1))
				i += 7919
			}
		})
	})
}

// BenchmarkStickyMemory reports the heap 262,144 remembered shoppers take, per shopper.
func BenchmarkStickyMemory(b *testing.B) {
	ids := stickyIDs()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t, _ := NewSticky(0, nil).table("bx", 1)
		for i, id := range ids {
			t.put(id, i%3)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/stickyBenchShoppers, "bytes/shopper")
		runtime.KeepAlive(t)
		var m sync.Map
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, id := range ids {
			m.Store(id, uint8(i%3))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/stickyBenchShoppers, "syncmap-bytes/shopper")
		runtime.KeepAlive(&m)
	}
}
