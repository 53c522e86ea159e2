package wasim

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Disappearing messages: a chat's timer is set from a phone (a protocol
// message of type EPHEMERAL_SETTING to the chat); from then on, what the
// simulated phones send in the chat is an ephemeral message whose context
// info carries the timer (Expiration, in seconds). The server deletes
// nothing itself: the phones (and linked devices) do when the timer ends.

// maxTimers caps the chats with a timer.
const maxTimers = 10000

// timerKey names a chat for its timer: the group JID, or the two phone
// numbers of a direct chat in order.
func timerKey(a, b string) string {
	if strings.HasSuffix(b, "@"+types.GroupServer) {
		return b
	}
	a, b = normalizePhone(a), normalizePhone(b)
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// SetDisappearingTimer sets, from the phone of account from, the
// disappearing-message timer of its chat with to (a phone number or a group
// JID); 0 turns it off. The members' linked devices get the change; it
// returns the protocol message's ID.
func (s *Server) SetDisappearingTimer(ctx context.Context, from, to string, timer time.Duration) (string, error) {
	secs := uint32(timer / time.Second)
	if strings.HasSuffix(to, "@"+types.GroupServer) {
		// In a group, the server tells the members (w:gp2 ephemeral).
		g, err := s.groupByJID(to)
		if err != nil {
			return "", err
		}
		if err = s.setGroupTimer(g, normalizePhone(from), secs); err != nil {
			return "", err
		}
		return "", ctx.Err()
	}
	id, err := s.send(ctx, from, to, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_EPHEMERAL_SETTING.Enum(), EphemeralExpiration: proto.Uint32(secs),
		EphemeralSettingTimestamp: proto.Int64(s.now().Unix()),
	}})
	if err != nil {
		return "", err
	}
	s.recordTimer(from, to, secs)
	return id, nil
}

// recordTimer keeps the timer of the chat between from and to.
func (s *Server) recordTimer(from, to string, secs uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timers == nil {
		s.timers = map[string]uint32{}
	}
	key := timerKey(from, to)
	if secs == 0 {
		delete(s.timers, key)
	} else if _, ok := s.timers[key]; ok || len(s.timers) < maxTimers {
		s.timers[key] = secs
	}
}

// setGroupTimer sets a group's timer for member actor and tells the
// members' devices.
func (s *Server) setGroupTimer(g *Group, actor string, secs uint32) error {
	s.mu.Lock()
	member := slices.Contains(g.Members, actor)
	locked := g.Locked && !isAdminLocked(g, actor)
	jid := g.JID.String()
	s.mu.Unlock()
	if !member {
		return ErrNotInGroup
	} else if locked {
		return ErrNotGroupAdmin
	}
	s.recordTimer(actor, jid, secs)
	child := waBinary.Node{Tag: "not_ephemeral"}
	if secs > 0 {
		child = waBinary.Node{Tag: "ephemeral", Attrs: waBinary.Attrs{"expiration": secs}}
	}
	s.notifyGroupChange(g, actor, child)
	return nil
}

// handleClientTimer records the timer a linked client set in a direct chat
// (an EPHEMERAL_SETTING protocol message it sent).
func (s *Server) handleClientTimer(from, to string, msg *waE2E.Message) {
	if pm := unwrapContent(msg).GetProtocolMessage(); pm.GetType() == waE2E.ProtocolMessage_EPHEMERAL_SETTING {
		s.recordTimer(from, to, pm.GetEphemeralExpiration())
	}
}

// DisappearingTimer is the timer of the chat between from and to.
func (s *Server) DisappearingTimer(from, to string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.timers[timerKey(from, to)]) * time.Second
}

// withTimer is msg as a phone sends it in the chat between from and to:
// wrapped as an ephemeral message carrying the timer, when the chat has
// one and msg is content (not a protocol message or a reaction).
func (s *Server) withTimer(from, to string, msg *waE2E.Message) *waE2E.Message {
	secs := uint32(s.DisappearingTimer(from, to) / time.Second)
	if secs == 0 || msg.GetProtocolMessage() != nil || msg.GetReactionMessage() != nil || msg.GetEphemeralMessage() != nil ||
		msg.GetSenderKeyDistributionMessage() != nil && isEmptyMessage(withoutSKDM(msg)) {
		return msg
	}
	msg = proto.Clone(msg).(*waE2E.Message)
	if text := msg.GetConversation(); text != "" {
		msg.Conversation = nil
		msg.ExtendedTextMessage = &waE2E.ExtendedTextMessage{Text: proto.String(text)}
	}
	ci := contextOf(msg)
	if ci == nil {
		if ext := msg.GetExtendedTextMessage(); ext != nil {
			ext.ContextInfo = &waE2E.ContextInfo{}
			ci = ext.ContextInfo
		}
	}
	if ci == nil {
		return msg
	}
	ci.Expiration = proto.Uint32(secs)
	return &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: msg}}
}

func withoutSKDM(msg *waE2E.Message) *waE2E.Message {
	c := proto.Clone(msg).(*waE2E.Message)
	c.SenderKeyDistributionMessage = nil
	c.MessageContextInfo = nil
	return c
}

// disappearRoutes adds the control API's timer route (see ControlHandler).
func (s *Server) disappearRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /disappearing", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To string
			Seconds  int `json:"seconds"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		id, err := s.SetDisappearingTimer(r.Context(), req.From, req.To, time.Duration(req.Seconds)*time.Second)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	})
}
