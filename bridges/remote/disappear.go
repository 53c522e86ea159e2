package remote

import "time"

// DisappearingPolicy tells a connector what the organisation does with
// disappearing messages (WhatsApp timers, Telegram self-destructing
// messages): true keeps them in Matrix for good (legal archiving), false
// honours their timers (the Matrix copy disappears when the remote one does).
type DisappearingPolicy func() (keep bool)

// DisappearingPolicySetter is implemented by connectors that bridge
// disappearing messages.
type DisappearingPolicySetter interface {
	SetDisappearingPolicy(p DisappearingPolicy)
}

// TimerChange is implemented by a connector's remote event that changes a
// chat's disappearing-message timer: the gate writes each one that is
// bridged in the audit log.
type TimerChange interface {
	// DisappearingTimer is the chat's new timer (0: off) and whether a
	// staff member set it (from their phone or from Matrix).
	DisappearingTimer() (timer time.Duration, byStaff bool)
}

var _ DisappearingPolicySetter = (*Hooks)(nil)

// SetDisappearingPolicy implements DisappearingPolicySetter.
func (h *Hooks) SetDisappearingPolicy(p DisappearingPolicy) {
	h.mu.Lock()
	h.disappearing = p
	h.mu.Unlock()
}

// KeepDisappearing tells whether disappearing messages are kept in Matrix
// (false, honour the timers, without a policy).
func (h *Hooks) KeepDisappearing() bool {
	h.mu.RLock()
	p := h.disappearing
	h.mu.RUnlock()
	return p != nil && p()
}
