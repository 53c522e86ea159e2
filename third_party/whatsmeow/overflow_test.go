// Passerelle's fifth patch (PASSERELLE.md).

package whatsmeow

import (
	"context"
	"strconv"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// TestQueueNodeKeepsOrder: nodes that come faster than they are handled
// reach the handler queue in the order they came, past its capacity and
// while it is drained; those of a connection that ended are dropped, and
// the next connection's nodes still reach the queue, in order.
func TestQueueNodeKeepsOrder(t *testing.T) {
	cli := &Client{Log: waLog.Noop, handlerQueue: make(chan *waBinary.Node, 4)}
	node := func(i int) *waBinary.Node {
		return &waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"id": strconv.Itoa(i)}}
	}
	next := func(t *testing.T) int {
		t.Helper()
		select {
		case n := <-cli.handlerQueue:
			i, _ := strconv.Atoi(n.Attrs["id"].(string))
			return i
		case <-time.After(10 * time.Second):
			t.Fatal("no node reached the handler queue")
			return -1
		}
	}

	ctx := context.Background()
	const total = 500
	for i := range total / 2 {
		cli.queueNode(ctx, node(i))
	}
	// The handler takes some while more come.
	for want := range 100 {
		if got := next(t); got != want {
			t.Fatalf("node %d reached the handler queue in place of %d", got, want)
		}
	}
	for i := total / 2; i < total; i++ {
		cli.queueNode(ctx, node(i))
	}
	for want := 100; want < total; want++ {
		if got := next(t); got != want {
			t.Fatalf("node %d reached the handler queue in place of %d", got, want)
		}
	}

	// A connection ends with nodes waiting: they are dropped (but the one
	// being handed over as it ended, as upstream's queue keeps what it
	// holds); the next connection's nodes go through after it, in order.
	// The drain goroutine may not have seen its list empty yet: nodes
	// queued now would wait behind it, not in the queue, and be dropped
	// with their connection (a flake in CI: "no node reached the handler
	// queue").
	deadline := time.Now().Add(10 * time.Second)
	for {
		cli.overflow.mu.Lock()
		draining := cli.overflow.draining
		cli.overflow.mu.Unlock()
		if !draining {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the overflow never drained")
		}
		time.Sleep(time.Millisecond)
	}
	ended, end := context.WithCancel(ctx)
	for i := range 10 {
		cli.queueNode(ended, node(1000+i))
	}
	end()
	for i := range 4 { // what the queue held before the end stays in it
		if got := next(t); got != 1000+i {
			t.Fatalf("node %d in place of %d", got, 1000+i)
		}
	}
	for i := range 20 {
		cli.queueNode(ctx, node(2000+i))
	}
	got := next(t)
	if got >= 1004 && got < 1010 {
		got = next(t)
	}
	for want := 2000; want < 2020; want++ {
		if want > 2000 {
			got = next(t)
		}
		if got != want {
			t.Fatalf("after a connection ended with nodes waiting: node %d in place of %d", got, want)
		}
	}
}
