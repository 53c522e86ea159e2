package metrics

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/bridges/remote"
)

// WrapQueue counts what next does with each remote event: bridged (with the
// latency from the event's remote timestamp to the end of its handling),
// ignored (refused by policy, held, or already bridged), failed for a passing reason (remote.Hooks.Deliver
// tries it again: each try counts), or failed. Signals are passed on
// without being counted.
func (m *Metrics) WrapQueue(next remote.Queue) remote.Queue {
	return func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) (res bridgev2.EventHandlingResult) {
		network := loginNetwork(login)
		class := ClassGroup
		if evt.GetPortalKey().Receiver != "" {
			class = ClassDirect
		}
		inFlight := m.inFlight.WithLabelValues(m.network(network), class)
		inFlight.Inc()
		defer inFlight.Dec()
		kind, counted := remoteKind(evt.GetType())
		if !counted {
			return next(login, evt)
		}
		defer func() {
			if p := recover(); p != nil {
				m.Failed(network, ToMatrix, ReasonFailed)
				panic(p)
			}
		}()
		res = next(login, evt)
		switch {
		case res.Ignored:
			m.Failed(network, ToMatrix, ReasonIgnored)
		case res.Success || res.Queued:
			m.Bridged(network, ToMatrix, kind, remoteTime(evt))
		case remote.Transient(res.Error):
			m.Failed(network, ToMatrix, ReasonTransient)
		default:
			m.Failed(network, ToMatrix, ReasonFailed)
		}
		return res
	}
}

// WrapBackfill counts the history messages next lets through to Matrix.
func (m *Metrics) WrapBackfill(next remote.BackfillFilter) remote.BackfillFilter {
	return func(ctx context.Context, h remote.History) []*bridgev2.BackfillMessage {
		out := next(ctx, h)
		if len(out) > 0 {
			m.history.WithLabelValues(m.network(loginNetwork(h.Login))).Add(float64(len(out)))
		}
		return out
	}
}

// WrapCheck counts the refusals of the outbound check next (content only,
// not signals).
func (m *Metrics) WrapCheck(next remote.OutboundCheck) remote.OutboundCheck {
	if next == nil {
		next = remote.AllowAll
	}
	return func(ctx context.Context, out remote.Outbound) error {
		err := next(ctx, out)
		if err != nil && !out.Kind.IsSignal() {
			var refusal *remote.Refusal
			switch {
			case errors.As(err, &refusal):
				m.Failed(loginNetwork(out.Login), ToRemote, ReasonRefused)
			case remote.Transient(err):
				m.Failed(loginNetwork(out.Login), ToRemote, ReasonTransient)
			default:
				m.Failed(loginNetwork(out.Login), ToRemote, ReasonFailed)
			}
		}
		return err
	}
}

// WrapSent counts what a connector sent (content only), with the latency
// from the Matrix event's timestamp to the end of the send, then tells next
// (nil: nobody).
func (m *Metrics) WrapSent(next remote.SentRecorder) remote.SentRecorder {
	return func(ctx context.Context, out remote.Outbound) {
		if kind, counted := outboundKind(out); counted {
			m.Bridged(loginNetwork(out.Login), ToRemote, kind, matrixTime(ctx))
		}
		if next != nil {
			next(ctx, out)
		}
	}
}

func loginNetwork(login *bridgev2.UserLogin) string {
	if login == nil {
		return OtherNetwork
	}
	return netid.Network(string(login.ID))
}

func remoteKind(t bridgev2.RemoteEventType) (kind string, counted bool) {
	switch t {
	case bridgev2.RemoteEventMessage, bridgev2.RemoteEventMessageUpsert:
		return KindMessage, true
	case bridgev2.RemoteEventEdit:
		return KindEdit, true
	case bridgev2.RemoteEventReaction, bridgev2.RemoteEventReactionRemove, bridgev2.RemoteEventReactionSync:
		return KindReaction, true
	case bridgev2.RemoteEventMessageRemove:
		return KindDeletion, true
	case bridgev2.RemoteEventChatInfoChange, bridgev2.RemoteEventChatResync, bridgev2.RemoteEventChatDelete:
		return KindChatChange, true
	case bridgev2.RemoteEventTyping, bridgev2.RemoteEventReadReceipt, bridgev2.RemoteEventDeliveryReceipt,
		bridgev2.RemoteEventMarkUnread:
		return "", false
	}
	return KindOther, true
}

func outboundKind(out remote.Outbound) (kind string, counted bool) {
	switch out.Kind {
	case remote.OutboundMessage:
		if out.HasMedia {
			return KindMedia, true
		}
		return KindMessage, true
	case remote.OutboundEdit:
		return KindEdit, true
	case remote.OutboundReaction:
		return KindReaction, true
	case remote.OutboundRedaction:
		return KindDeletion, true
	case remote.OutboundGroupChange, remote.OutboundMemberAdd, remote.OutboundMemberRemove:
		return KindChatChange, true
	}
	if out.Kind.IsSignal() {
		return "", false
	}
	return KindOther, true
}
