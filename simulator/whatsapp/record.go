package wasim

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Message is a message a simulated phone received and decrypted, from a
// linked client or from another simulated account.
type Message struct {
	ID        string    // WhatsApp message ID, as chosen by the sender
	From      string    // sender's phone number
	To        string    // recipient's phone number, or the group JID ("…@g.us")
	Group     bool      // To is a group
	Timestamp time.Time // server time
	Message   *waE2E.Message

	seq uint64 // recording order, over sent and received messages
}

// Text returns the message's text: conversation or extended text.
func (m Message) Text() string {
	if t := m.Message.GetConversation(); t != "" {
		return t
	}
	return m.Message.GetExtendedTextMessage().GetText()
}

// Mentions returns the JIDs mentioned in an extended text message.
func (m Message) Mentions() []string {
	return m.Message.GetExtendedTextMessage().GetContextInfo().GetMentionedJID()
}

// Receipt is a receipt a linked client sent.
type Receipt struct {
	From        string            // phone number of the client's account
	Chat        string            // the contact's phone number, or the group JID
	Participant string            // in groups, the phone number of the message's sender
	Type        types.ReceiptType // "" for delivery, "read", "retry", …
	IDs         []string
	Timestamp   time.Time
}

type recorder struct {
	mu       sync.Mutex
	changed  chan struct{}
	messages []Message
	taken    []bool
	receipts []Receipt
	// seen holds (sender, recipient, ID) of every recorded message: like
	// WhatsApp's recipients, a phone keeps one message per sender and ID.
	seen       map[[3]string]bool
	duplicates int
	// sent are the messages simulated phones sent (the latest maxSent).
	sent       []Message
	chatStates []ChatState
	seq        uint64
}

// maxSent bounds the messages of simulated phones kept for the views.
const maxSent = 20000

// addSent records a message a simulated phone sent.
func (r *recorder) addSent(m Message) {
	r.mu.Lock()
	r.seq++
	m.seq = r.seq
	if len(r.sent) >= maxSent {
		r.sent = slices.Delete(r.sent, 0, len(r.sent)-maxSent+1)
	}
	r.sent = append(r.sent, m)
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *recorder) addChatState(cs ChatState) {
	r.mu.Lock()
	if len(r.chatStates) >= maxChatStates {
		r.chatStates = slices.Delete(r.chatStates, 0, len(r.chatStates)-maxChatStates+1)
	}
	r.chatStates = append(r.chatStates, cs)
	r.notifyLocked()
	r.mu.Unlock()
}

// notify wakes the waiters (a change outside the recorded lists).
func (r *recorder) notify() {
	r.mu.Lock()
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *recorder) init() {
	r.changed = make(chan struct{})
	r.seen = map[[3]string]bool{}
}

func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// addMessage records m, unless its recipient already has a message with
// its sender and ID (a resend): then it is counted as a duplicate and
// addMessage returns false.
func (r *recorder) addMessage(m Message) bool {
	r.mu.Lock()
	key := [3]string{m.From, m.To, m.ID}
	if r.seen[key] {
		r.duplicates++
		r.mu.Unlock()
		return false
	}
	r.seen[key] = true
	r.seq++
	m.seq = r.seq
	r.messages = append(r.messages, m)
	r.taken = append(r.taken, false)
	r.notifyLocked()
	r.mu.Unlock()
	return true
}

func (r *recorder) addReceipt(rc Receipt) {
	r.mu.Lock()
	r.receipts = append(r.receipts, rc)
	r.notifyLocked()
	r.mu.Unlock()
}

// wait calls check under the lock until it returns true or ctx ends.
func (r *recorder) wait(ctx context.Context, check func() bool) error {
	for {
		r.mu.Lock()
		ok := check()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func matchAddr(want, got string) bool {
	if want == "" {
		return true
	}
	if strings.HasSuffix(want, "@"+types.GroupServer) {
		return want == got
	}
	return normalizePhone(want) == normalizePhone(got)
}

// WaitMessage waits for a message from phone from to to (a phone number or a
// group JID; "" matches anything) for which pred (nil: any) returns true.
// It returns the oldest such message that no earlier WaitMessage call
// returned, so waiting twice for "hello" needs two "hello"s.
func (s *Server) WaitMessage(ctx context.Context, from, to string, pred func(Message) bool) (Message, error) {
	var found Message
	err := s.rec.wait(ctx, func() bool {
		for i, m := range s.rec.messages {
			if !s.rec.taken[i] && matchAddr(from, m.From) && matchAddr(to, m.To) && (pred == nil || pred(m)) {
				s.rec.taken[i] = true
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// Messages returns every message simulated phones have received so far.
func (s *Server) Messages() []Message {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return slices.Clone(s.rec.messages)
}

// MessagesFrom returns the messages simulated phones have received after
// the first i (Messages()[i:]), for a watcher that reads them as they come.
func (s *Server) MessagesFrom(i int) []Message {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if i < 0 || i >= len(s.rec.messages) {
		return nil
	}
	return slices.Clone(s.rec.messages[i:])
}

// DuplicateMessages returns how many messages simulated phones received
// again with the sender and ID of one they already had, and dropped.
func (s *Server) DuplicateMessages() int {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return s.rec.duplicates
}

// WaitReceipt waits for a receipt sent by a client for which pred returns
// true (receipts are not consumed).
func (s *Server) WaitReceipt(ctx context.Context, pred func(Receipt) bool) (Receipt, error) {
	var found Receipt
	err := s.rec.wait(ctx, func() bool {
		for _, rc := range s.rec.receipts {
			if pred == nil || pred(rc) {
				found = rc
				return true
			}
		}
		return false
	})
	return found, err
}

// Receipts returns every receipt clients have sent so far.
func (s *Server) Receipts() []Receipt {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return slices.Clone(s.rec.receipts)
}

// AwaitReceipts waits until the linked client of account phone has sent a
// receipt for every message the simulated phones sent it (directly or in
// its groups). Tests wait for it before stopping a client: whatsmeow sends
// receipts from goroutines that race its Disconnect.
func (s *Server) AwaitReceipts(ctx context.Context, phone string) error {
	phone = normalizePhone(phone)
	want := map[string]bool{}
	s.mu.Lock()
	for _, acc := range s.accounts {
		for id, sent := range acc.sent {
			if sent.to == phone {
				want[id] = true
			} else if g := s.groups[sent.group.User]; !sent.group.IsEmpty() && g != nil && slices.Contains(g.Members, phone) && acc.Phone != phone {
				want[id] = true
			}
		}
	}
	s.mu.Unlock()
	return s.rec.wait(ctx, func() bool {
		seen := map[string]bool{}
		for _, rc := range s.rec.receipts {
			if rc.From == phone && rc.Type != types.ReceiptTypeRetry && rc.Type != types.ReceiptTypeServerError {
				for _, id := range rc.IDs {
					seen[id] = true
				}
			}
		}
		for id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}
