package remote

import (
	"context"
	"errors"
	"net/http"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
)

// OutboundKind is what a staff member is about to do.
type OutboundKind string

const (
	// OutboundMessage: a Matrix message is about to be sent to the chat.
	OutboundMessage OutboundKind = "message"
	// OutboundNewChat: a chat with the remote user is about to be started
	// (ResolveIdentifier with createChat).
	OutboundNewChat OutboundKind = "new_chat"
	// OutboundEdit, OutboundReaction, OutboundRedaction: a Matrix edit,
	// reaction or deletion is about to be sent.
	OutboundEdit      OutboundKind = "edit"
	OutboundReaction  OutboundKind = "reaction"
	OutboundRedaction OutboundKind = "redaction"
	// OutboundReadReceipt, OutboundTyping, OutboundPresence: the staff
	// member's read marker, typing or presence is about to be told to the
	// network. These are signals, not content: a connector asks before it
	// sends one and, when refused (the organisation switched them off, or
	// the chat is not bridged), drops it quietly with a debug log; the
	// check never creates an approval request for them.
	OutboundReadReceipt OutboundKind = "read_receipt"
	OutboundTyping      OutboundKind = "typing"
	OutboundPresence    OutboundKind = "presence"
	// OutboundGroupChange: a staff member is about to change a group on the
	// network from Matrix (its name, topic, picture, settings, or a
	// member's rights). OutboundMemberAdd and OutboundMemberRemove: about to
	// add a contact to a group (Remote and Identity are the contact; an
	// empty PortalKey for a group being created) or to remove one. They go only where the chat is bridged now, never create
	// an approval request, and an added contact must be allowed by the
	// organisation's policy; a refusal leaves the network untouched and the
	// connector puts the Matrix change back with a notice.
	OutboundGroupChange  OutboundKind = "group_change"
	OutboundMemberAdd    OutboundKind = "member_add"
	OutboundMemberRemove OutboundKind = "member_remove"
)

// IsGroupChange tells the kinds that change a group rather than say
// something in it.
func (k OutboundKind) IsGroupChange() bool {
	switch k {
	case OutboundGroupChange, OutboundMemberAdd, OutboundMemberRemove:
		return true
	}
	return false
}

// IsSignal tells the kinds that carry no content (read receipts, typing,
// presence).
func (k OutboundKind) IsSignal() bool {
	switch k {
	case OutboundReadReceipt, OutboundTyping, OutboundPresence:
		return true
	}
	return false
}

// Outbound describes what a connector is about to send, before it sends it.
type Outbound struct {
	Kind  OutboundKind
	Login *bridgev2.UserLogin
	// Portal is the chat's portal, when it exists (messages).
	Portal *bridgev2.Portal
	// PortalKey is the chat, also when no portal exists yet (new chats).
	PortalKey networkid.PortalKey
	// Remote is the outside person (the other user of a direct chat), if
	// the connector knows it.
	Remote networkid.UserID
	// Identity is what the connector already knows of Remote, from its
	// caches (empty fields when it knows nothing more than the ID).
	Identity Identity
	// Chat is what the connector already knows of the chat.
	Chat Chat
	// HasMedia tells a message with media from one without.
	HasMedia bool
	// TargetMessage is the remote message an edit, reaction, redaction or
	// read receipt is about.
	TargetMessage networkid.MessageID
}

// OutboundCheck is asked by a connector before a Matrix message leaves for
// the remote network and before a chat is started. A nil error lets it go;
// a *Refusal explains why it may not.
type OutboundCheck func(ctx context.Context, out Outbound) error

// OutboundCheckSetter is implemented by connectors that ask an outbound
// check (AllowAll unless the gateway gives them another one).
type OutboundCheckSetter interface {
	SetOutboundCheck(check OutboundCheck)
}

// SentRecorder is told after a connector has sent what an outbound check let
// through, so that only what really left is counted.
type SentRecorder func(ctx context.Context, out Outbound)

// SentRecorderSetter is implemented by connectors that report what they
// sent.
type SentRecorderSetter interface {
	SetSentRecorder(rec SentRecorder)
}

// AllowAll lets everything go.
func AllowAll(context.Context, Outbound) error { return nil }

// Refusal is the error of an outbound check that refuses: Reason is a
// sentence for the staff member, without any phone number.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// HumanError implements bridgev2.HumanError.
func (r *Refusal) HumanError() string { return r.Reason }

// MessageStatus turns an outbound check's error into the error a connector
// returns from HandleMatrixMessage: the refusal is certain and explained in
// the room by a notice. Other errors (the check could not decide) are
// retriable and explained too.
func MessageStatus(err error) error {
	var refusal *Refusal
	if errors.As(err, &refusal) {
		return bridgev2.WrapErrorInStatus(err).WithMessage(refusal.Reason).
			WithIsCertain(true).WithSendNotice(true).
			WithErrorReason(event.MessageStatusNoPermission).WithStatus(event.MessageStatusFail)
	}
	return bridgev2.WrapErrorInStatus(err).WithErrorAsMessage().WithSendNotice(true)
}

// RespError turns an outbound check's error into the error a connector
// returns from ResolveIdentifier (start-chat command, provisioning API).
func RespError(err error) error {
	var refusal *Refusal
	if errors.As(err, &refusal) {
		return bridgev2.RespError{ErrCode: "M_FORBIDDEN", Err: refusal.Reason, StatusCode: http.StatusForbidden}
	}
	return err
}
