// Passerelle's fifth patch (PASSERELLE.md): the nodes that come while the
// handler queue is full wait in order, instead of each in a goroutine of
// its own that races the others to the queue.

package whatsmeow

import (
	"context"
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// maxOverflowNodes bounds the nodes waiting for room in the handler queue;
// past it, a node goes to the queue from a goroutine of its own, as
// upstream does for every node once the queue is full (its order is then
// no longer kept).
const maxOverflowNodes = 65536

// nodeOverflow keeps the nodes that came while the handler queue was full,
// in the order they came; one goroutine (drain) moves them to the queue as
// it makes room. While any waits, a new node waits behind them, so the
// queue gets every node in the order the socket read them. The frame loop
// itself never waits for the queue: a node handler waiting for an IQ's
// answer would otherwise wait for the frame loop, and it for the handler.
type nodeOverflow struct {
	mu       sync.Mutex
	nodes    []waitingNode
	draining bool
}

// waitingNode is a node and its connection's context: a node of a
// connection that ended is dropped, as the queue's own contents are (the
// server sends what was not acknowledged again).
type waitingNode struct {
	ctx  context.Context
	node *waBinary.Node
}

// queueNode hands node to the handler queue, behind the nodes waiting for
// room in it.
func (cli *Client) queueNode(ctx context.Context, node *waBinary.Node) {
	o := &cli.overflow
	o.mu.Lock()
	if !o.draining {
		select {
		case cli.handlerQueue <- node:
			o.mu.Unlock()
			return
		default:
		}
		cli.Log.Warnf("Handler queue is full, the next nodes wait in order")
		o.draining = true
		o.nodes = append(o.nodes, waitingNode{ctx, node})
		o.mu.Unlock()
		go cli.drainOverflow()
		return
	}
	if len(o.nodes) >= maxOverflowNodes {
		o.mu.Unlock()
		cli.Log.Warnf("Handler queue is full and %d nodes wait for it, message ordering is no longer guaranteed", maxOverflowNodes)
		go func() {
			select {
			case cli.handlerQueue <- node:
			case <-ctx.Done():
			}
		}()
		return
	}
	o.nodes = append(o.nodes, waitingNode{ctx, node})
	o.mu.Unlock()
}

// drainOverflow moves the waiting nodes to the handler queue, oldest
// first, until none waits; those of a connection that ended are dropped.
func (cli *Client) drainOverflow() {
	o := &cli.overflow
	for {
		o.mu.Lock()
		if len(o.nodes) == 0 {
			o.draining = false
			o.nodes = nil
			o.mu.Unlock()
			return
		}
		w := o.nodes[0]
		o.nodes[0] = waitingNode{}
		o.nodes = o.nodes[1:]
		o.mu.Unlock()
		if w.ctx.Err() != nil {
			continue
		}
		select {
		case cli.handlerQueue <- w.node:
		case <-w.ctx.Done():
		}
	}
}
