// Passerelle's patch: a handler may acknowledge a message, or a group's
// notification, after it returns (see events.Message.DeferAck,
// events.GroupInfo.DeferAck, events.JoinedGroup.DeferAck and
// Client.DeferrableAcks).

package whatsmeow

import (
	"context"
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types/events"
)

// messageAcks is the acknowledgement of one message node whose decrypted
// messages handlers may finish after they return: the node is acknowledged
// once every deferred message finished well and the node was sealed.
type messageAcks struct {
	mu      sync.Mutex
	added   int
	pending int
	failed  bool
	sealed  bool
	ack     func()
}

// newMessageAcks is nil (nothing can be deferred) unless the client lets
// handlers defer acknowledgements.
func (cli *Client) newMessageAcks() *messageAcks {
	if !cli.DeferrableAcks || !cli.SynchronousAck {
		return nil
	}
	return &messageAcks{}
}

// add counts one deferred message; handled runs when it finished well.
func (a *messageAcks) add(handled func()) func(ok bool) {
	a.mu.Lock()
	a.added++
	a.pending++
	a.mu.Unlock()
	var once sync.Once
	return func(ok bool) {
		once.Do(func() {
			if ok {
				handled()
			}
			a.finish(ok)
		})
	}
}

func (a *messageAcks) finish(ok bool) {
	a.mu.Lock()
	a.pending--
	if !ok {
		a.failed = true
	}
	ack := a.takeLocked()
	a.mu.Unlock()
	if ack != nil {
		ack()
	}
}

// takeLocked returns the node's acknowledgement once it is due, at most
// once.
func (a *messageAcks) takeLocked() func() {
	if !a.sealed || a.pending > 0 || a.failed || a.ack == nil {
		return nil
	}
	ack := a.ack
	a.ack = nil
	return ack
}

// seal is called once the node's messages were all dispatched: it reports
// whether the acknowledgement is the deferred messages' business (ack runs
// when the last one finished well, or never if one failed); false when
// nothing was deferred and the caller acknowledges as usual.
func (a *messageAcks) seal(ack func()) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	if a.added == 0 {
		a.mu.Unlock()
		return false
	}
	a.sealed, a.ack = true, ack
	run := a.takeLocked()
	a.mu.Unlock()
	if run != nil {
		run()
	}
	return true
}

// dispatchGroupNotification dispatches a group notification's event
// (GroupInfo or JoinedGroup); deferred reports that a handler took the
// node's acknowledgement over (the caller then does not send it).
func (cli *Client) dispatchGroupNotification(ctx context.Context, node *waBinary.Node, evt any) (handlerFailed, deferred bool) {
	if cli.DeferrableAcks && cli.SynchronousAck {
		take := func() func(ok bool) {
			deferred = true
			var once sync.Once
			return func(ok bool) {
				once.Do(func() {
					if ok {
						cli.sendAck(context.WithoutCancel(ctx), node, 0)
					}
				})
			}
		}
		switch e := evt.(type) {
		case *events.GroupInfo:
			e.DeferAck = take
		case *events.JoinedGroup:
			e.DeferAck = take
		}
	}
	handlerFailed = cli.dispatchEvent(evt)
	if handlerFailed {
		// A failed handler's notification is not acknowledged, deferred
		// or not.
		return true, false
	}
	return false, deferred
}
