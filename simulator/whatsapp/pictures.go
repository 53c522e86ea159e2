package wasim

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg" // group pictures set by a device must be JPEGs
	"net/http"
	"slices"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// picture is a profile or group picture: served in the clear at
// https://MediaHost/pp/<id>, as WhatsApp serves them.
type picture struct {
	id   string
	size int
}

func (ms *mediaServer) putPicture(id string, data []byte) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.pictures == nil {
		ms.pictures = map[string][]byte{}
	}
	ms.pictures[id] = data
}

func (ms *mediaServer) servePicture(w http.ResponseWriter, r *http.Request) {
	ms.mu.Lock()
	data, ok := ms.pictures[strings.TrimPrefix(r.URL.Path, "/pp/")]
	ms.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(data)
}

func pictureURL(id string) string { return "https://" + MediaHost + "/pp/" + id }

// setPicture stores jid's picture (nil removes it) and tells the linked
// devices that see it: a group's members, or every account for a user.
func (s *Server) setPicture(jid types.JID, author string, data []byte) string {
	id := ""
	s.mu.Lock()
	if data == nil {
		delete(s.pictures, jid.String())
	} else {
		id = NewMessageID()
		s.pictures[jid.String()] = picture{id: id, size: len(data)}
	}
	var devs []*companion
	if g := s.groups[jid.User]; jid.Server == types.GroupServer && g != nil {
		for _, p := range g.Members {
			if acc := s.accounts[p]; acc != nil {
				devs = append(devs, acc.linkedDevicesLocked()...)
			}
		}
	} else {
		for _, acc := range s.accounts {
			devs = append(devs, acc.linkedDevicesLocked()...)
		}
	}
	s.mu.Unlock()
	if data != nil {
		s.media.putPicture(id, data)
	}
	child := waBinary.Node{Tag: "delete", Attrs: waBinary.Attrs{"jid": jid}}
	if data != nil {
		child = waBinary.Node{Tag: "set", Attrs: waBinary.Attrs{"jid": jid, "id": id}}
	}
	if author != "" {
		child.Attrs["author"] = types.NewJID(author, types.DefaultUserServer)
	}
	node := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": jid, "type": "picture", "id": NewMessageID(), "t": s.now().Unix(),
	}, Content: []waBinary.Node{child}}
	for _, d := range devs {
		s.pushToDevice(d, node)
	}
	return id
}

// SetProfilePicture sets (nil: removes) the profile picture of an account;
// linked devices get a picture notification (events.Picture).
func (s *Server) SetProfilePicture(ctx context.Context, phone string, data []byte) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	s.setPicture(acc.JID, acc.Phone, data)
	return ctx.Err()
}

// SetGroupPicture sets (nil: removes) a group's picture from the phone of
// actor, a member (an admin when the group is locked).
func (s *Server) SetGroupPicture(ctx context.Context, actor, group string, data []byte) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	actor = normalizePhone(actor)
	if err = s.checkInfoRights(g, actor); err != nil {
		return err
	}
	s.setPicture(g.JID, actor, data)
	return ctx.Err()
}

// PictureID is the ID of jid's current picture ("" when none).
func (s *Server) PictureID(jid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pictures[jid].id
}

// Picture returns jid's current picture.
func (s *Server) Picture(jid string) ([]byte, bool) {
	id := s.PictureID(jid)
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	data, ok := s.media.pictures[id]
	return data, ok && id != ""
}

func (s *Server) checkInfoRights(g *Group, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(g.Members, actor) {
		return ErrNotInGroup
	} else if g.Locked && !isAdminLocked(g, actor) {
		return ErrNotGroupAdmin
	}
	return nil
}

// handlePictureIQ answers GetProfilePictureInfo (get, target=jid) and
// SetGroupPhoto (set, target=group).
func (s *Server) handlePictureIQ(c *conn, iq *waBinary.Node, acc *Account, typ string, child waBinary.Node) {
	target, _ := iq.Attrs["target"].(types.JID)
	switch typ {
	case "get":
		s.mu.Lock()
		pic, ok := s.pictures[target.ToNonAD().String()]
		s.mu.Unlock()
		switch {
		case !ok:
			c.iqError(iq, 404, "item-not-found")
		case child.AttrGetter().OptionalString("id") == pic.id:
			c.iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"status": 304}})
		default:
			c.iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{
				"id": pic.id, "url": pictureURL(pic.id), "type": "image", "direct_path": "/pp/" + pic.id,
			}})
		}
	case "set":
		g, err := s.groupByJID(target.String())
		if err == nil {
			err = s.checkInfoRights(g, acc.Phone)
		}
		if err != nil {
			c.iqError(iq, 403, "forbidden")
			return
		}
		var data []byte
		if pic, ok := child.Content.([]byte); ok && child.Tag == "picture" {
			data = pic
		}
		// Like WhatsApp, only a JPEG is taken as a group picture.
		if data != nil {
			if _, format, err := image.DecodeConfig(bytes.NewReader(data)); err != nil || format != "jpeg" {
				c.iqError(iq, 406, "not-acceptable")
				return
			}
		}
		id := s.setPicture(g.JID, acc.Phone, data)
		c.iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"id": id}})
	default:
		c.iqError(iq, 400, "bad-request")
	}
}
