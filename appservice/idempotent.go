package appservice

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strconv"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// idempotentMatrix is the Matrix connector with ghost sends that a
// homeserver recognises when they come twice.
//
// bridgev2 (v0.32) sends a remote message to its portal with a random
// transaction ID and records it in its database only after the homeserver
// answered. A gateway killed between the two forgets it sent the message;
// the network delivers the message again when the gateway is back (an
// unacknowledged WhatsApp message, a Telegram update past the stored pts)
// and bridgev2 sends it a second time. With a transaction ID derived from
// what identifies the remote message (portal key, message ID, part), the
// second PUT is the same request as the first and the homeserver answers it
// with the event it already made, as the client-server API's transaction
// IDs promise.
//
// Only GhostIntent is changed: the bot's intent and double-puppet intents
// stay mautrix's own (some of mautrix's commands type-assert them).
//
// NewUserIntent applies the staff members' double-puppeting switch
// (puppeting) and records the receipts their double puppets set.
type idempotentMatrix struct {
	*matrix.Connector
	pup *puppeting
}

// NewUserIntent makes a staff member's double puppet, unless double
// puppeting is off for them.
func (c idempotentMatrix) NewUserIntent(ctx context.Context, userID id.UserID, accessToken string) (bridgev2.MatrixAPI, string, error) {
	if c.pup != nil && !c.pup.allowed(ctx, userID) {
		return nil, accessToken, nil
	}
	intent, newToken, err := c.Connector.NewUserIntent(ctx, userID, accessToken)
	if err == nil && intent != nil && c.pup != nil {
		c.pup.wrapIntent(userID, intent)
	}
	return intent, newToken, err
}

// GhostIntent returns the ghost's intent with idempotent message sends.
func (c idempotentMatrix) GhostIntent(userID networkid.UserID) bridgev2.MatrixAPI {
	intent := c.Connector.GhostIntent(userID)
	if as, ok := intent.(*matrix.ASIntent); ok {
		return &idempotentIntent{ASIntent: as}
	}
	return intent
}

// useIdempotentSends puts the idempotent connector in the bridge. It runs
// after bridgev2's Init (the components' Init saw the connector itself) and
// before Start (no ghost has an intent yet). The appservice's HTTP client
// (shared by every intent) gets the send reconciler and the creation pacer. It also registers the one
// mautrix command that type-asserts the bridge's Matrix connector.
func useIdempotentSends(ctx context.Context, br *bridgev2.Bridge, mc *matrix.Connector, pup *puppeting) error {
	store, err := openSendStore(ctx, br.DB.Database)
	if err != nil {
		return err
	}
	br.Matrix = idempotentMatrix{Connector: mc, pup: pup}
	mc.AS.HTTPClient.Transport = newSendReconciler(mc.AS.HTTPClient.Transport, store, br.Log.With().Str("component", "send_reconciler").Logger())
	// Portal rooms are created a few at a time, behind live messages.
	mc.AS.HTTPClient.Transport = newCreationPacer(mc.AS.HTTPClient.Transport, maxCreations)
	if proc, ok := br.Commands.(*commands.Processor); ok {
		proc.AddHandler(discardSessionCommand(mc))
	}
	return nil
}

// discardSessionCommand replaces mautrix's discard-megolm-session, which
// expects the bridge's connector to be *matrix.Connector.
func discardSessionCommand(mc *matrix.Connector) *commands.FullHandler {
	return &commands.FullHandler{
		Name:    "discard-megolm-session",
		Aliases: []string{"discard-session"},
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAdmin,
			Description: "Start a new outbound encryption session in this room",
		},
		RequiresAdmin: true,
		Func: func(ce *commands.Event) {
			if mc.Crypto == nil {
				ce.Reply("Encryption is not enabled on this gateway.")
				return
			}
			mc.Crypto.ResetSession(ce.Ctx, ce.RoomID)
			ce.Reply("The room's outbound session is discarded: the next message from the remote network shares new keys.")
		},
	}
}

// idempotentIntent is a ghost's intent whose new-message and reaction sends
// carry a transaction ID derived from the remote event. Everything else,
// optional interfaces included, is the embedded ASIntent's.
type idempotentIntent struct {
	*matrix.ASIntent
}

// SendMessage sends with a derived transaction ID when bridgev2 gave none.
func (i *idempotentIntent) SendMessage(ctx context.Context, roomID id.RoomID, eventType event.Type, content *event.Content, extra *bridgev2.MatrixSendExtra) (*mautrix.RespSendEvent, error) {
	return i.ASIntent.SendMessage(ctx, roomID, eventType, content, withRemoteTxnID(eventType, extra))
}

// withRemoteTxnID returns extra with a transaction ID derived from the
// remote event it carries, or extra unchanged when it already has one or
// when the send is not the first send of a remote event:
//   - a new message part (MessageMeta without an event ID yet): portal key,
//     message ID, part ID and part index;
//   - a new reaction (ReactionMeta without an event ID yet): portal key,
//     target message and part, sender, emoji and the reaction's time (one
//     person may react, take it back and react again with the same emoji).
//
// Edits carry the edited part's MessageMeta with its event ID set, and
// redactions are a redaction event type: both keep a random ID, since two
// edits of one message are two events.
func withRemoteTxnID(eventType event.Type, extra *bridgev2.MatrixSendExtra) *bridgev2.MatrixSendExtra {
	if extra == nil || extra.TransactionID != "" || eventType == event.EventRedaction {
		return extra
	}
	var fields []string
	switch {
	case extra.MessageMeta != nil && extra.MessageMeta.MXID == "":
		m := extra.MessageMeta
		fields = []string{"message", string(m.Room.ID), string(m.Room.Receiver), string(m.ID), string(m.PartID), strconv.Itoa(extra.PartIndex)}
	case extra.ReactionMeta != nil && extra.ReactionMeta.MXID == "":
		r := extra.ReactionMeta
		fields = []string{"reaction", string(r.Room.ID), string(r.Room.Receiver), string(r.MessageID), string(r.MessagePartID),
			string(r.SenderID), string(r.EmojiID), strconv.FormatInt(r.Timestamp.UnixNano(), 10)}
	default:
		return extra
	}
	copied := *extra
	copied.TransactionID = remoteTxnID(fields)
	return &copied
}

// remoteTxnPrefix starts every derived transaction ID.
const remoteTxnPrefix = "passerelle."

// remoteTxnID hashes the fields (length-prefixed, so that no two lists of
// fields give the same input) into a transaction ID.
func remoteTxnID(fields []string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return remoteTxnPrefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}
