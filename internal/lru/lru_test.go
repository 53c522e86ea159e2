package lru

import (
	"fmt"
	"sync"
	"testing"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("a = %v, %v", v, ok)
	}
	c.Put("c", 3) // evicts b
	if _, ok := c.Get("b"); ok {
		t.Fatal("b was not evicted")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Fatalf("%s = %v, %v", k, v, ok)
		}
	}
	c.Put("a", 10)
	if v, _ := c.Get("a"); v != 10 || c.Len() != 2 {
		t.Fatalf("after update: a = %v, len %d", v, c.Len())
	}
}

func TestBoundedUnderConcurrentUse(t *testing.T) {
	c := New[string, int](100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				k := fmt.Sprint(g, "-", i)
				c.Put(k, i)
				c.Get(k)
			}
		}()
	}
	wg.Wait()
	if c.Len() != 100 {
		t.Fatalf("len = %d, want the cap 100", c.Len())
	}
}

func TestRemoveFreesTheSlot(t *testing.T) {
	c := New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	c.Remove("a")
	c.Remove("missing")
	if _, ok := c.Get("a"); ok || c.Len() != 1 {
		t.Fatalf("after Remove: a still there or len %d", c.Len())
	}
	c.Put("c", 3) // fits without evicting b
	if _, ok := c.Get("b"); !ok {
		t.Fatal("b was evicted although a's slot was free")
	}
}
