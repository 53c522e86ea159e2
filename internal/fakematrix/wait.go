package fakematrix

import (
	"time"

	"maunium.net/go/mautrix/bridgev2/status"
)

// PollInterval is how long Eventually sleeps between checks.
const PollInterval = 20 * time.Millisecond

// Eventually checks cond every PollInterval until it holds, and tells
// whether it did before timeout passed. cond is called without the lock
// held, so it may use the accessors (and look at things outside the record,
// such as a simulator or a clock); it must not wait itself.
//
// It polls rather than waking at each recording on purpose: the bridge
// often finishes handling an event just after sending it to Matrix, and a
// waiter that woke at the send itself would race with that.
func (m *Matrix) Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// WaitMessage waits for a message for which pred holds and returns the
// first such message.
func (m *Matrix) WaitMessage(timeout time.Duration, pred func(Message) bool) (Message, bool) {
	var found Message
	ok := m.Eventually(timeout, func() bool {
		var ok bool
		found, ok = m.FindMessage(pred)
		return ok
	})
	return found, ok
}

// WaitBridgeState waits for a bridge state of evt with the error code (""
// for any).
func (m *Matrix) WaitBridgeState(timeout time.Duration, evt status.BridgeStateEvent, code status.BridgeStateErrorCode) bool {
	return m.Eventually(timeout, func() bool { return m.HasBridgeState(evt, code) })
}
