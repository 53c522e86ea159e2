package wasim

import (
	"net/http"
	"slices"
	"strings"

	"go.mau.fi/util/random"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// InviteLinkPrefix starts every group invite link.
const InviteLinkPrefix = "https://chat.whatsapp.com/"

// GroupInviteLink returns a group's invite link, making its code the first
// time (what an admin shares).
func (s *Server) GroupInviteLink(group string) (string, error) {
	g, err := s.groupByJID(group)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.inviteCode == "" {
		g.inviteCode = random.String(22)
	}
	return InviteLinkPrefix + g.inviteCode, nil
}

func (s *Server) groupByInviteLocked(code string) *Group {
	code = strings.TrimPrefix(code, InviteLinkPrefix)
	for _, g := range s.groups {
		if code != "" && g.inviteCode == code {
			return g
		}
	}
	return nil
}

// handleInviteIQ answers GetGroupInviteLink (get, to the group), and
// GetGroupInfoFromLink (get) and JoinGroupWithLink (set) to the group
// server with the code: joining adds the account and tells the members
// (an add notification with reason invite).
func (s *Server) handleInviteIQ(c *conn, iq *waBinary.Node, acc *Account, typ string, to types.JID, child waBinary.Node) {
	if to.User != "" {
		if typ != "get" {
			c.iqError(iq, 501, "feature-not-implemented")
			return
		}
		link, err := s.GroupInviteLink(to.String())
		if err != nil {
			c.iqError(iq, 404, "item-not-found")
			return
		}
		c.iqResult(iq, waBinary.Node{Tag: "invite", Attrs: waBinary.Attrs{"code": strings.TrimPrefix(link, InviteLinkPrefix)}})
		return
	}
	s.mu.Lock()
	g := s.groupByInviteLocked(child.AttrGetter().OptionalString("code"))
	joined := false
	if g != nil && typ == "set" && !slices.Contains(g.Members, acc.Phone) {
		g.Members = append(g.Members, acc.Phone)
		joined = true
	}
	s.mu.Unlock()
	switch {
	case g == nil:
		c.iqError(iq, 406, "not-acceptable") // whatsmeow: ErrInviteLinkInvalid
	case typ == "get":
		c.iqResult(iq, s.groupNode(g))
	default:
		c.iqResult(iq, waBinary.Node{Tag: "group", Attrs: waBinary.Attrs{"jid": g.JID}})
		if joined {
			s.notifyGroupChange(g, acc.Phone, waBinary.Node{Tag: "add", Attrs: waBinary.Attrs{"reason": "invite"},
				Content: participantNodes([]string{acc.Phone})})
		}
	}
}

// inviteRoutes adds GET /groups/{jid}/invite to the control API: the
// group's invite link.
func (s *Server) inviteRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /groups/{jid}/invite", func(w http.ResponseWriter, r *http.Request) {
		link, err := s.GroupInviteLink(r.PathValue("jid"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"link": link})
	})
}
