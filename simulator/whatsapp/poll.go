package wasim

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"time"

	"go.mau.fi/util/random"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
)

// SendPoll sends a poll from the phone of account from to to (a phone number
// or a group JID), with a message secret as the apps attach to polls so that
// votes can be encrypted. It returns the poll's message ID.
func (s *Server) SendPoll(ctx context.Context, from, to, question string, options []string, selectable int) (string, error) {
	opts := make([]*waE2E.PollCreationMessage_Option, len(options))
	for i, o := range options {
		opts[i] = &waE2E.PollCreationMessage_Option{OptionName: proto.String(o)}
	}
	return s.send(ctx, from, to, &waE2E.Message{
		PollCreationMessageV3: &waE2E.PollCreationMessage{
			Name: proto.String(question), Options: opts, SelectableOptionsCount: proto.Uint32(uint32(selectable)),
		},
		MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: random.Bytes(32)},
	})
}

// SendPollVote sends, from the phone of account from, a vote for options of
// the poll pollID that from itself sent to to (a phone number), encrypted
// with the poll's message secret as WhatsApp does:
//
//	key = HKDF-SHA256(secret, info: pollID || poll sender JID || voter JID || "Poll Vote", 32)
//	vote = AES-256-GCM(key, iv, PollVoteMessage{sha256(option)...}, aad: pollID || 0x00 || voter JID)
func (s *Server) SendPollVote(ctx context.Context, from, to, pollID string, options []string) (string, error) {
	facc, err := s.account(from)
	if err != nil {
		return "", err
	}
	tacc, err := s.account(to)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	sent := facc.sent[pollID]
	s.mu.Unlock()
	if sent == nil {
		return "", fmt.Errorf("%w: poll %s of %s", ErrNoSuchMessage, pollID, from)
	}
	var poll waE2E.Message
	if err = proto.Unmarshal(sent.plaintext, &poll); err != nil {
		return "", err
	}
	secret := poll.GetMessageContextInfo().GetMessageSecret()
	if len(secret) == 0 {
		return "", fmt.Errorf("poll %s has no message secret", pollID)
	}
	vote := &waE2E.PollVoteMessage{}
	for _, o := range options {
		h := sha256.Sum256([]byte(o))
		vote.SelectedOptions = append(vote.SelectedOptions, h[:])
	}
	plain, err := proto.Marshal(vote)
	if err != nil {
		return "", err
	}
	voter := facc.JID.String()
	key, err := hkdf.Key(sha256.New, secret, nil, pollID+voter+voter+"Poll Vote", 32)
	if err != nil {
		return "", err
	}
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	iv := random.Bytes(12)
	return s.SendMessage(ctx, from, to, &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{
		PollCreationMessageKey: &waCommon.MessageKey{RemoteJID: proto.String(tacc.JID.String()), FromMe: proto.Bool(true), ID: proto.String(pollID)},
		Vote:                   &waE2E.PollEncValue{EncPayload: aead.Seal(nil, iv, plain, []byte(pollID+"\x00"+voter)), EncIV: iv},
		SenderTimestampMS:      proto.Int64(time.Now().UnixMilli()),
	}})
}
