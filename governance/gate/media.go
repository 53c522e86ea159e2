package gate

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/governance/seal"
)

var _ remote.MediaCheck = (*Gate)(nil).CheckMedia

// Who says what when the media rules refuse a file: the gate refuses (a
// *remote.Refusal whose Reason names the type, the size and the limit, and
// never a phone number or a file name) and writes a media_refused audit
// entry; the connector tells the staff member in the chat. Outbound, it
// returns remote.MessageStatus(err) from HandleMatrixMessage, so the
// message gets a failed status and a notice with the reason; inbound, it
// bridges a notice with the reason instead of the file and keeps the
// message's text. The gate does not post a notice of its own, so the staff
// member reads the reason once, where the file would have been.

// CheckMedia is the gateway's media check: a connector asks it before a file
// crosses, either way. It applies the media rules of the config (max_size,
// allowed_types, refused_types per network and direction); a refusal is a
// *remote.Refusal, logged in the audit log as media_refused. It decides from
// the config alone: no lock, no database read on the way of a file that
// passes.
func (g *Gate) CheckMedia(ctx context.Context, m remote.Media) error {
	if !g.started.Load() {
		return ErrNotStarted
	}
	network := mediaNetwork(m)
	file := mediaFile(network, m)
	refusal := g.cfg.Media.Check(file)
	if refusal == nil {
		return nil
	}
	reason := mediaReason(networkName(network), file, refusal)
	zerolog.Ctx(ctx).Info().Str("portal_id", g.ShownPortal(m.PortalKey.ID)).Str("direction", string(m.Direction)).
		Str("kind", string(m.Kind)).Str("mime", shownMIME(file.MIME)).Int64("size", m.Size).Str("cause", refusal.Cause).
		Msg("Refused a file by the media rules")
	g.logMediaRefused(ctx, network, m, file, refusal)
	return &remote.Refusal{Reason: reason}
}

// mediaNetwork is the network of a file: its chat's, else its login's.
func mediaNetwork(m remote.Media) string {
	if m.PortalKey.ID != "" {
		return networkOf(string(m.PortalKey.ID))
	}
	if m.Login != nil {
		return networkOf(string(m.Login.ID))
	}
	return ""
}

// mediaFile is a file as the media rules see it. A file without a declared
// type is application/octet-stream, a contact card text/vcard; a location
// or a poll is not a file, and type rules do not apply to it.
func mediaFile(network string, m remote.Media) policy.MediaFile {
	dir := policy.Inbound
	if m.Direction == remote.MediaOutbound {
		dir = policy.Outbound
	}
	mime := policy.NormalizeMIME(m.MIME)
	if mime == "" {
		switch m.Kind {
		case remote.MediaLocation, remote.MediaPoll:
		case remote.MediaContact:
			mime = "text/vcard"
		default:
			mime = "application/octet-stream"
		}
	}
	return policy.MediaFile{Network: network, Direction: dir, MIME: mime, Size: m.Size}
}

// shownMIME is a file's type as a notice or a log shows it: the sender
// chose it, so one that is not a plain MIME type, or that holds a run of
// digits that could be a phone number, is not shown.
func shownMIME(mime string) string {
	typ, sub, ok := strings.Cut(mime, "/")
	if !ok || !plainToken(typ) || !plainToken(sub) || seal.LooksLikeNumber(mime) {
		return "an unrecognised type"
	}
	return mime
}

// plainToken reports whether s is made of letters, digits and ".+-".
func plainToken(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(".+-", c)) {
			return false
		}
	}
	return true
}

// mediaReason is the sentence the staff member reads: the file's type and
// size, and the limit or the types it broke.
func mediaReason(net string, f policy.MediaFile, r *policy.MediaRefusal) string {
	way := "to be sent to " + net
	if f.Direction == policy.Inbound {
		way = "to be received from " + net
	}
	what := "This file"
	if f.MIME == "" {
		what = "This attachment"
	}
	switch r.Cause {
	case policy.MediaTooLarge:
		typ := ""
		if f.MIME != "" {
			typ = " (" + shownMIME(f.MIME) + ")"
		}
		return fmt.Sprintf("The organisation does not allow files over %s %s. %s is %s%s.", r.Limit, way, what, policy.HumanSize(f.Size), typ)
	case policy.MediaTypeRefused:
		return fmt.Sprintf("The organisation does not allow files of type %s %s. %s is %s (%s).",
			shownPattern(r.Pattern), way, what, shownMIME(f.MIME), policy.HumanSize(f.Size))
	default:
		allowed := make([]string, len(r.Allowed))
		for i, p := range r.Allowed {
			allowed[i] = shownPattern(p)
		}
		return fmt.Sprintf("The organisation allows only files of type %s %s. %s is %s (%s).",
			strings.Join(allowed, ", "), way, what, shownMIME(f.MIME), policy.HumanSize(f.Size))
	}
}

// shownPattern is a type pattern of the config as a notice shows it.
func shownPattern(p string) string {
	p = policy.NormalizeMIME(p)
	if p == "*/*" || p == "*" {
		return "any type"
	}
	if prefix, ok := strings.CutSuffix(p, "/*"); ok {
		return prefix + "/*"
	}
	return p
}

// logMediaRefused writes the media_refused entry: who, which chat (and in
// a direct chat, which contact), the direction, the file's kind, type and
// size, and what refused it. Hashed mode pseudonymises the chat, the login
// and the contact like in every entry.
func (g *Gate) logMediaRefused(ctx context.Context, network string, m remote.Media, f policy.MediaFile, r *policy.MediaRefusal) {
	details := map[string]any{
		"direction": m.Direction, "kind": m.Kind, "mime": f.MIME, "size": m.Size,
		"cause": r.Cause, "scope": r.Scope, "receiver": m.PortalKey.Receiver,
	}
	switch r.Cause {
	case policy.MediaTooLarge:
		details["limit"] = int64(r.Limit)
	case policy.MediaTypeRefused:
		details["pattern"] = r.Pattern
	default:
		details["allowed"] = r.Allowed
	}
	e := audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionMediaRefused, Network: network,
		Portal: m.PortalKey.ID, Details: audit.Details(details),
	}
	if m.Login != nil {
		e.Staff, e.Login = m.Login.UserMXID, m.Login.ID
	}
	if m.Remote != "" {
		e.Contact = g.Contacts.Key(m.Remote)
	}
	if _, err := g.Audit.Append(ctx, e); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log refused file")
	}
}

// carriesMedia reports whether a remote event carries media that the media
// rules let through (remote.MediaCarrier): such an event counts as media in
// the contact registry once it is bridged.
func (g *Gate) carriesMedia(network string, evt bridgev2.RemoteEvent) bool {
	carrier, ok := evt.(remote.MediaCarrier)
	if !ok {
		return false
	}
	for _, m := range carrier.RemoteMedia() {
		if g.cfg.Media.Check(mediaFile(network, m)) == nil {
			return true
		}
	}
	return false
}
