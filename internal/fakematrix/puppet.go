package fakematrix

import (
	"context"
	"encoding/json"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// puppetState is the double puppeting of a Matrix side: off unless a test
// turns it on, and each user's account data.
type puppetState struct {
	on          bool
	accountData map[id.UserID]map[string]json.RawMessage
}

// EnableDoublePuppet makes NewUserIntent give any Matrix user an intent, as
// a homeserver with double puppeting set up would: the bridge then acts as
// staff members where it can (see Intent's GetAccountData,
// SetAccountData and JoinedMembers).
func (m *Matrix) EnableDoublePuppet() {
	m.mu.Lock()
	m.puppets.on = true
	m.mu.Unlock()
}

func (m *Matrix) doublePuppetOn() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puppets.on
}

// SetAccountData sets a user's global account data, as their own client
// would.
func (m *Matrix) SetAccountData(userID id.UserID, name string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.puppets.accountData == nil {
		m.puppets.accountData = make(map[id.UserID]map[string]json.RawMessage)
	}
	if m.puppets.accountData[userID] == nil {
		m.puppets.accountData[userID] = make(map[string]json.RawMessage)
	}
	m.puppets.accountData[userID][name] = raw
	return nil
}

// AccountData returns a user's global account data of a type, or nil.
func (m *Matrix) AccountData(userID id.UserID, name string) json.RawMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puppets.accountData[userID][name]
}

// GetAccountData reads the intent's user's account data into output
// (M_NOT_FOUND when there is none), as mautrix.Client does.
func (in *Intent) GetAccountData(_ context.Context, name string, output any) error {
	raw := in.m.AccountData(in.mxid, name)
	if raw == nil {
		return fmt.Errorf("account data %s of %s: %w", name, in.mxid, mautrix.MNotFound)
	}
	return json.Unmarshal(raw, output)
}

// SetAccountData sets the intent's user's account data.
func (in *Intent) SetAccountData(_ context.Context, name string, data any) error {
	return in.m.SetAccountData(in.mxid, name, data)
}

// JoinedMembers lists the room's joined members, as mautrix.Client does.
func (in *Intent) JoinedMembers(_ context.Context, roomID id.RoomID) (*mautrix.RespJoinedMembers, error) {
	resp := &mautrix.RespJoinedMembers{Joined: map[id.UserID]mautrix.JoinedMember{}}
	for userID, membership := range in.m.Members(roomID) {
		if membership == event.MembershipJoin {
			resp.Joined[userID] = mautrix.JoinedMember{}
		}
	}
	return resp, nil
}
