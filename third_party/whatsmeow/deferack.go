// Passerelle's patch: a handler may acknowledge a message after it returns
// (see events.Message.DeferAck and Client.DeferrableAcks).

package whatsmeow

import "sync"

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
