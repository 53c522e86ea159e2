// Package audit keeps the gateway's account of what crossed the border: an
// append-only, hash-chained log of governance events, and a registry of every
// outside contact the organisation talks to. Neither ever holds message
// content.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
)

// Action is what an audit entry records.
type Action string

const (
	ActionLogin           Action = "login"            // a staff member linked a remote account
	ActionLogout          Action = "logout"           // … or unlinked it
	ActionPortalCreated   Action = "portal_created"   // a chat became a Matrix portal
	ActionPortalRevoked   Action = "portal_revoked"   // an admin took a portal back
	ActionPortalAllowed   Action = "portal_allowed"   // an admin allowed a revoked portal again
	ActionPolicyChanged   Action = "policy_changed"   // a runtime rule was added or removed
	ActionPolicyDenied    Action = "policy_denied"    // the gate refused an event or a new chat
	ActionRequestCreated  Action = "request_created"  // a new chat waits for approval
	ActionRequestApproved Action = "request_approved" // an admin approved it
	ActionRequestDenied   Action = "request_denied"   // an admin denied it
	ActionRequestExpired  Action = "request_expired"  // nobody answered in time
	ActionFirstContact    Action = "first_contact"    // a new outside identity was seen
	ActionStateReverted   Action = "state_reverted"   // the gateway undid a forbidden room change
	ActionAdminAction     Action = "admin_action"     // any other admin command or API call
	ActionRetentionPurge  Action = "retention_purge"  // old entries were purged
	ActionHeadPublished   Action = "head_published"   // the chain head was posted outside the database
	ActionMediaRefused    Action = "media_refused"    // the media rules refused a file
	ActionMessageDeleted  Action = "message_deleted"  // a message was deleted for everyone (never its content)
	ActionHistoryBridged  Action = "history_bridged"  // a chat's history (backfill) was bridged into its portal
	ActionTimerChanged    Action = "timer_changed"    // a chat's disappearing-message timer changed

	// The migration's (governance/migration).
	ActionDirectoryLinked    Action = "directory_linked"    // an identity was linked to a Matrix account (or pending)
	ActionDirectoryCorrected Action = "directory_corrected" // its Matrix account, department or label changed
	ActionDirectoryConfirmed Action = "directory_confirmed" // a pending link was confirmed
	ActionDirectoryUnlinked  Action = "directory_unlinked"  // a link was removed
	ActionClaimIssued        Action = "claim_issued"        // a Matrix user asked for a claim code (never the code)
	ActionStatusChanged      Action = "migration_status"    // a contact's migration status changed
	ActionProgressLink       Action = "progress_link"       // an admin asked for a progress page login link (never the link)
	ActionProgressLogin      Action = "progress_login"      // a progress page login link was used (or refused)
	ActionProgressSummary    Action = "progress_summary"    // the weekly progress summary was posted
	ActionDepartmentChanged  Action = "department_changed"  // a staff member's department was set or cleared
	ActionInvitationSent     Action = "invitation_sent"     // a contact was sent an invitation to Matrix (never its text)
	ActionDeadlineAnnounced  Action = "deadline_announced"  // a network's migration deadline step was announced ahead
	ActionDeadlineReached    Action = "deadline_reached"    // a network's migration deadline step took effect
	ActionCutOver            Action = "cut_over"            // a portal moved to a native Matrix room
)

// Actions lists every action, in a stable order.
var Actions = []Action{
	ActionLogin, ActionLogout, ActionPortalCreated, ActionPortalRevoked, ActionPortalAllowed,
	ActionPolicyChanged, ActionPolicyDenied, ActionRequestCreated, ActionRequestApproved,
	ActionRequestDenied, ActionRequestExpired, ActionFirstContact, ActionStateReverted,
	ActionAdminAction, ActionRetentionPurge, ActionHeadPublished, ActionMediaRefused, ActionMessageDeleted,
	ActionHistoryBridged, ActionTimerChanged,
	ActionDirectoryLinked, ActionDirectoryCorrected, ActionDirectoryConfirmed, ActionDirectoryUnlinked,
	ActionClaimIssued, ActionStatusChanged,
	ActionProgressLink, ActionProgressLogin, ActionProgressSummary,
	ActionDepartmentChanged, ActionInvitationSent,
	ActionDeadlineAnnounced, ActionDeadlineReached,
	ActionCutOver,
}

// Valid reports whether a is one of Actions.
func (a Action) Valid() bool {
	for _, known := range Actions {
		if a == known {
			return true
		}
	}
	return false
}

// ActorSystem is the actor of entries the gateway writes on its own.
const ActorSystem = "system"

// Entry is one audit log entry. Subject fields that do not apply stay empty.
type Entry struct {
	// Seq numbers entries from 1 without gaps; set by Append.
	Seq int64 `json:"seq"`
	// Time is set by Append if zero; it is kept to the millisecond.
	Time time.Time `json:"time"`
	// Actor is the Matrix user who acted, or ActorSystem.
	Actor  string `json:"actor"`
	Action Action `json:"action"`
	// Network is the remote network concerned, if any.
	Network string `json:"network,omitempty"`

	// Staff is the staff member concerned (the one who logged in, whose chat
	// was held, …), who may differ from Actor.
	Staff   id.UserID             `json:"staff,omitempty"`
	Login   networkid.UserLoginID `json:"login,omitempty"`
	Portal  networkid.PortalID    `json:"portal,omitempty"`
	Contact string                `json:"contact,omitempty"` // Registry.Key of the outside identity
	Request string                `json:"request,omitempty"` // approval request ID

	// Details is a JSON object with anything else worth keeping (rule, counts,
	// reason): never message content. Append stores it compacted; nil is {}.
	Details json.RawMessage `json:"details"`

	// PrevHash is the hash of the previous entry, or of the purge anchor.
	PrevHash string `json:"prev_hash"`
	// Hash is SHA-256 over PrevHash and the entry's canonical encoding.
	Hash string `json:"hash"`
}

// ZeroHash is the PrevHash of the first entry ever written.
var ZeroHash = strings.Repeat("0", 64)

// Details marshals v (usually a map or a struct) for Entry.Details. It
// panics if v cannot be marshalled, which is a programming error.
func Details(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("audit: failed to marshal details: %w", err))
	}
	return data
}

// ErrInvalidEntry is returned (wrapped) by Append for an entry it refuses.
var ErrInvalidEntry = errors.New("invalid audit entry")

// normalize checks e and brings it into the form that is stored and hashed.
func (e *Entry) normalize() error {
	if !e.Action.Valid() {
		return fmt.Errorf("%w: unknown action %q", ErrInvalidEntry, e.Action)
	}
	if e.Actor != ActorSystem {
		if _, _, err := id.UserID(e.Actor).Parse(); err != nil || !strings.HasPrefix(e.Actor, "@") {
			return fmt.Errorf("%w: actor %q is neither a Matrix user ID nor %q", ErrInvalidEntry, e.Actor, ActorSystem)
		}
	}
	if len(bytes.TrimSpace(e.Details)) == 0 {
		e.Details = json.RawMessage("{}")
	} else {
		if !json.Valid(e.Details) || bytes.TrimSpace(e.Details)[0] != '{' {
			return fmt.Errorf("%w: details are not a JSON object", ErrInvalidEntry)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Details); err != nil {
			return fmt.Errorf("%w: details: %v", ErrInvalidEntry, err)
		}
		e.Details = buf.Bytes()
	}
	e.Time = time.UnixMilli(e.Time.UnixMilli()).UTC()
	return nil
}

// hashDomain starts the canonical encoding; a new encoding gets a new tag.
const hashDomain = "passerelle-audit-v1"

// ComputeHash returns the hex SHA-256 of prevHash (decoded, 32 bytes)
// followed by the canonical encoding of e: the tag "passerelle-audit-v1", a
// zero byte, Seq and Time (unix milliseconds) as big-endian int64, then
// Actor, Action, Network, Staff, Login, Portal, Contact, Request and Details,
// each as a big-endian uint32 length and its bytes. PrevHash and Hash of e
// are not read. The encoding is documented so that an export can be checked
// by other tools.
func ComputeHash(prevHash string, e *Entry) (string, error) {
	prev, err := hex.DecodeString(prevHash)
	if err != nil || len(prev) != sha256.Size {
		return "", fmt.Errorf("previous hash %q is not a hex SHA-256", prevHash)
	}
	h := sha256.New()
	h.Write(prev)
	h.Write([]byte(hashDomain))
	h.Write([]byte{0})
	var num [8]byte
	binary.BigEndian.PutUint64(num[:], uint64(e.Seq))
	h.Write(num[:])
	binary.BigEndian.PutUint64(num[:], uint64(e.Time.UnixMilli()))
	h.Write(num[:])
	for _, field := range []string{e.Actor, string(e.Action), e.Network, string(e.Staff), string(e.Login), string(e.Portal), e.Contact, e.Request, string(e.Details)} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(field)))
		h.Write(n[:])
		h.Write([]byte(field))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
