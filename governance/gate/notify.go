package gate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/approval"
)

var eventPowerLevels = event.StatePowerLevels

func contentOf(parsed any) *event.Content { return &event.Content{Parsed: parsed} }

const kvAdminRoom = "admin_room"

// Reactions on a request notice that decide it.
const (
	ReactionApprove = "✅"
	ReactionDeny    = "❌"
)

// AdminRoom returns the room where requests go: the configured one, else
// the one the gate created before, else a new one with the admins invited.
func (g *Gate) AdminRoom(ctx context.Context) (id.RoomID, error) {
	g.roomMu.Lock()
	defer g.roomMu.Unlock()
	if g.adminRoom != "" {
		return g.adminRoom, nil
	}
	if g.cfg.AdminRoom != "" {
		if err := g.br.Bot.EnsureJoined(ctx, g.cfg.AdminRoom); err != nil {
			return "", fmt.Errorf("failed to join configured admin room: %w", err)
		}
		g.setAdminRoom(g.cfg.AdminRoom)
		return g.adminRoom, nil
	}
	stored, err := g.state.getKV(ctx, kvAdminRoom)
	if err != nil {
		return "", fmt.Errorf("failed to get admin room: %w", err)
	} else if stored != "" {
		g.setAdminRoom(id.RoomID(stored))
		return g.adminRoom, nil
	}
	if len(g.cfg.Admins) == 0 {
		return "", fmt.Errorf("no admins are configured (network.governance.admins), so there is no admin room")
	}
	pl := &event.PowerLevelsEventContent{Users: map[id.UserID]int{g.br.Bot.GetMXID(): 9001}}
	for _, admin := range g.cfg.Admins {
		pl.Users[admin] = AdminPowerLevel
	}
	req := &mautrix.ReqCreateRoom{
		Visibility:         "private",
		Preset:             "private_chat",
		Name:               "Passerelle governance",
		Topic:              "Approval requests and admin commands of the Passerelle gateway",
		Invite:             append([]id.UserID(nil), g.cfg.Admins...),
		PowerLevelOverride: pl,
	}
	if g.EncryptAdminRoom {
		req.InitialState = append(req.InitialState, &event.Event{
			Type:    event.StateEncryption,
			Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
		})
	}
	roomID, err := g.br.Bot.CreateRoom(ctx, req)
	if err != nil {
		return "", fmt.Errorf("failed to create admin room: %w", err)
	}
	if err = g.state.setKV(ctx, kvAdminRoom, string(roomID)); err != nil {
		return "", fmt.Errorf("failed to store admin room: %w", err)
	}
	zerolog.Ctx(ctx).Info().Stringer("room_id", roomID).Msg("Created governance admin room")
	g.setAdminRoom(roomID)
	return roomID, nil
}

func (g *Gate) setAdminRoom(roomID id.RoomID) {
	g.adminRoom = roomID
	g.adminRoomID.Store(roomID)
}

// IsAdminRoom reports whether roomID is the admin room (without creating
// it, and without waiting while it is created).
func (g *Gate) IsAdminRoom(roomID id.RoomID) bool {
	cur, _ := g.adminRoomID.Load().(id.RoomID)
	return roomID != "" && roomID == cur
}

// NoticeContent renders a notice of the bot from markdown (raw HTML is
// escaped; remote names go in through EscapeName). It mentions nobody: the
// empty m.mentions tells clients and servers that know intentional mentions
// not to notify on words of the body.
func NoticeContent(markdown string) *event.MessageEventContent {
	content := format.RenderMarkdown(markdown, true, false)
	content.MsgType = event.MsgNotice
	content.Mentions = &event.Mentions{}
	return &content
}

func (g *Gate) sendNotice(ctx context.Context, roomID id.RoomID, markdown string) (id.EventID, error) {
	resp, err := g.br.Bot.SendMessage(ctx, roomID, event.EventMessage, &event.Content{Parsed: NoticeContent(markdown)}, nil)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// sendAdminNotice posts a notice in the admin room.
func (g *Gate) sendAdminNotice(ctx context.Context, markdown string) id.EventID {
	roomID, err := g.AdminRoom(ctx)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("No admin room to post a notice in")
		return ""
	}
	evtID, err := g.sendNotice(ctx, roomID, markdown)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to post notice in admin room")
	}
	return evtID
}

// RequestNotice is the text of a request's notice in the admin room.
func (g *Gate) RequestNotice(req approval.Request) string {
	var b strings.Builder
	what := "New chat"
	if req.Direction == "outbound" {
		what = "A staff member wants to start a chat"
	}
	fmt.Fprintf(&b, "**%s waiting for approval — request #%d**\n\n", what, req.ID)
	fmt.Fprintf(&b, "* Staff member: %s\n", req.Staff)
	fmt.Fprintf(&b, "* Network and account: %s, account %s\n", networkName(req.Network), format.SafeMarkdownCode(g.ShownLogin(req.Login)))
	// Remote names are the remote side's choice: escaped (contactLabel).
	outside := contactLabel(req)
	if req.ContactName != "" && req.ContactIdent != "" {
		outside += " (" + EscapeName(req.ContactIdent) + ")"
	}
	fmt.Fprintf(&b, "* Outside: %s\n", outside)
	kind := "direct chat"
	if req.IsGroup {
		kind = "group"
		if req.ChatName != "" {
			kind += " " + EscapeName(req.ChatName)
		}
	}
	fmt.Fprintf(&b, "* Chat: %s %s\n", kind, format.SafeMarkdownCode(g.ShownPortal(req.Portal.ID)))
	if req.Members != "" {
		fmt.Fprintf(&b, "* Members: %s\n", EscapeName(req.Members))
	}
	fmt.Fprintf(&b, "* Held messages: %d\n", req.HeldCount)
	fmt.Fprintf(&b, "* Expires: %s\n\n", req.ExpiresAt.UTC().Format(time.RFC1123))
	prefix := g.br.Config.CommandPrefix
	fmt.Fprintf(&b, "React %s to approve or %s to deny, or send `%s gov-approve %d` / `%s gov-deny %d`.",
		ReactionApprove, ReactionDeny, prefix, req.ID, prefix, req.ID)
	return b.String()
}

// notifyRequest posts a new request in the admin room and remembers the
// notice, so that a reaction on it decides the request.
func (g *Gate) notifyRequest(ctx context.Context, req approval.Request) {
	g.notices.RLock()
	defer g.notices.RUnlock()
	evtID := g.sendAdminNotice(ctx, g.RequestNotice(req))
	if evtID == "" {
		return
	}
	if err := g.state.putNotice(ctx, evtID, req.ID); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to remember request notice")
	}
}

// RequestForNotice returns the request whose notice is evtID. An admin (or
// an admin's bot) may react on a notice the instant it shows, before the
// gate has remembered its event: an event not found is looked up again
// once the notices being posted are remembered (or ctx is done).
func (g *Gate) RequestForNotice(ctx context.Context, evtID id.EventID) (int64, bool, error) {
	reqID, found, err := g.state.notice(ctx, evtID)
	if found || err != nil {
		return reqID, found, err
	}
	posted := make(chan struct{})
	go func() {
		g.notices.Lock() // once the notices in flight are remembered
		close(posted)
		g.notices.Unlock()
	}()
	select {
	case <-posted:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	return g.state.notice(ctx, evtID)
}

// tellStaff posts a notice in the staff member's management room.
func (g *Gate) tellStaff(ctx context.Context, req approval.Request, text string) {
	user, err := g.br.GetUserByMXID(ctx, req.Staff)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get staff member to notify")
		return
	}
	roomID, err := user.GetManagementRoom(ctx)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get staff member's management room")
		return
	}
	if _, err = g.sendNotice(ctx, roomID, text); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to notify staff member")
	}
}

// Notice posts a formatted notice (markdown) as the bot.
func (g *Gate) Notice(ctx context.Context, roomID id.RoomID, format string, args ...any) error {
	_, err := g.sendNotice(ctx, roomID, fmt.Sprintf(format, args...))
	return err
}
