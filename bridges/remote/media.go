package remote

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// MediaDirection tells which way a file crosses the gateway.
type MediaDirection string

const (
	// MediaInbound: from the remote network to Matrix.
	MediaInbound MediaDirection = "inbound"
	// MediaOutbound: from Matrix to the remote network.
	MediaOutbound MediaDirection = "outbound"
)

// MediaKind is what a file is to the person who sends it.
type MediaKind string

const (
	MediaImage    MediaKind = "image"
	MediaVideo    MediaKind = "video"
	MediaGIF      MediaKind = "gif"
	MediaAudio    MediaKind = "audio"
	MediaVoice    MediaKind = "voice"
	MediaFile     MediaKind = "file"
	MediaSticker  MediaKind = "sticker"
	MediaContact  MediaKind = "contact"
	MediaLocation MediaKind = "location"
	MediaPoll     MediaKind = "poll"
)

// Media describes a file (or a location, contact card or poll) a connector
// is about to bridge, before it downloads or sends the bytes when the
// network tells the size first, or once it has them otherwise.
type Media struct {
	Direction MediaDirection
	Kind      MediaKind
	Login     *bridgev2.UserLogin
	// PortalKey is the chat.
	PortalKey networkid.PortalKey
	// Remote is the outside person: the sender of an inbound file, the
	// other user of a direct chat for an outbound one (empty in groups).
	Remote networkid.UserID
	// MIME is the file's type as the sender declared it (or as sniffed when
	// nothing was declared); Size is in bytes, -1 when unknown; Name is the
	// file name, if any.
	MIME string
	Size int64
	Name string
}

// MediaCheck is asked by a connector before a file crosses the gateway. A nil
// error lets it through; a *Refusal says why it may not (the connector
// bridges a notice with the reason instead of the file, and keeps the
// message's text). A size of -1 passes every size limit: a connector that
// asked before it knew the size (or trusted a size the sender declared, as
// in a Matrix event's info) asks again with the real size once it has it,
// before the file crosses.
type MediaCheck func(ctx context.Context, m Media) error

// MediaCheckSetter is implemented by connectors that ask a media check.
type MediaCheckSetter interface {
	SetMediaCheck(check MediaCheck)
}

var _ MediaCheckSetter = (*Hooks)(nil)

// SetMediaCheck implements MediaCheckSetter.
func (h *Hooks) SetMediaCheck(check MediaCheck) {
	h.mu.Lock()
	h.media = check
	h.mu.Unlock()
}

// CheckMedia asks the media check; nil when there is none.
func (h *Hooks) CheckMedia(ctx context.Context, m Media) error {
	h.mu.RLock()
	check := h.media
	h.mu.RUnlock()
	if check == nil {
		return nil
	}
	return check(ctx, m)
}

// MediaCarrier is implemented by a remote event that carries media (a photo,
// a file, a voice note, a sticker, a location, a contact card, a poll): it
// lists them as the connector knew them when it built the event, from the
// network's message alone (no download, no I/O), with Direction
// MediaInbound for a contact's message and MediaOutbound for the staff
// member's own message sent from the phone; Size is -1 where the network does
// not say. The gate reads it, one way (it never calls back into the
// connector), to count media per outside contact in the contact registry
// when the event is bridged: not while it is held for approval, and not the
// files its media rules refuse. An event without media returns nil (or does
// not implement the interface).
type MediaCarrier interface {
	RemoteMedia() []Media
}
