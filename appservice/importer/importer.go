// Package importer brings the rooms of an existing mautrix-whatsapp or
// mautrix-telegram (bridgev2) bridge into Passerelle, so that staff keep
// their rooms when an organisation switches: `passerelle import`.
//
// It reads the old bridge's database through bridgev2's own queries (it
// never writes to it), translates every ID into Passerelle's
// network-prefixed IDs (see waid and tgid) and writes portals (their Matrix
// rooms kept), ghosts, message mappings and, where the session format is
// known, logins into Passerelle's database. What it cannot translate it
// reports and leaves out. It adds the old bridge's user namespaces to
// Passerelle's registration, and marks every imported room so that the
// gateway, at its next start, has the old bot invite its own bot and give it
// power (Takeover).
package importer

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/appservice/importer/upgrades"
	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
	"github.com/passerelle/passerelle/internal/clock"
)

// VersionTable is the version table of the importer's own tables.
const VersionTable = "passerelle_import_version"

// Options say what to import, from where, into what.
type Options struct {
	// Network is Passerelle's network the old bridge served: "whatsapp"
	// or "telegram".
	Network string
	// Source is the old bridge's database (see OpenSource).
	Source *dbutil.Database
	// SourceBridgeID is the bridge_id of the old bridge's rows ("" for
	// the mautrix bridges' default).
	SourceBridgeID networkid.BridgeID
	// OldRegistration is the old bridge's appservice registration.
	OldRegistration *appservice.Registration
	// HomeserverDomain is the server name of the homeserver.
	HomeserverDomain string
	// Target is Passerelle's database; TargetBridgeID its bridge_id.
	Target         *dbutil.Database
	TargetBridgeID networkid.BridgeID
	// Registration is Passerelle's registration, RegistrationPath its
	// file; the old namespaces are added to it (nil: left alone).
	Registration     *appservice.Registration
	RegistrationPath string
	// DryRun reports what would change and writes nothing anywhere.
	DryRun bool
	Clock  clock.Clock
}

// emptyMeta is the metadata of a row whose old metadata does not apply:
// Passerelle's connector fills its own as it syncs.
func emptyMeta() any { return &map[string]any{} }

type run struct {
	opts   Options
	tr     translator
	src    *source
	dst    *database.Database
	exists bool // Passerelle's tables exist (always true unless DryRun)
	report *Report
	log    *zerolog.Logger

	portals     map[networkid.PortalKey]networkid.PortalKey // source key -> target key
	loginsIn    map[networkid.UserLoginID]bool              // target login IDs imported or present
	ghostsIn    map[networkid.UserID]bool                   // target ghost IDs imported or present
	takeover    []*database.Portal
	tgStore     *telegram.Store
	waStore     *wastore.Container
	wa          waSource
	tgSessions  map[int64][]byte
	targetUsers map[id.UserID]*database.User
}

// Run imports (or, DryRun, reports what it would import).
func Run(ctx context.Context, opts Options) (*Report, error) {
	tr, err := newTranslator(opts.Network)
	if err != nil {
		return nil, err
	}
	if opts.OldRegistration == nil || opts.OldRegistration.SenderLocalpart == "" {
		return nil, errors.New("the old bridge's registration (with its sender_localpart) is required")
	}
	if opts.HomeserverDomain == "" {
		return nil, errors.New("the homeserver domain is required")
	}
	src, err := openSource(ctx, opts.Source, opts.SourceBridgeID)
	if err != nil {
		return nil, err
	}
	r := &run{
		opts: opts, tr: tr, src: src, report: newReport(opts.DryRun), log: zerolog.Ctx(ctx),
		portals:     map[networkid.PortalKey]networkid.PortalKey{},
		loginsIn:    map[networkid.UserLoginID]bool{},
		ghostsIn:    map[networkid.UserID]bool{},
		tgSessions:  map[int64][]byte{},
		targetUsers: map[id.UserID]*database.User{},
	}
	r.report.OldBridge, r.report.Network, r.report.SchemaVersion = tr.OldBridge(), tr.Network(), src.version
	r.report.OldBot = id.NewUserID(opts.OldRegistration.SenderLocalpart, opts.HomeserverDomain).String()
	r.dst = database.New(opts.TargetBridgeID, database.MetaTypes{
		Portal: emptyMeta, Ghost: emptyMeta, Message: emptyMeta, Reaction: emptyMeta, UserLogin: emptyMeta,
	}, opts.Target)
	if opts.DryRun {
		// Nothing is created: a fresh gateway database is an empty one.
		_, _, r.exists, err = readVersion(ctx, opts.Target)
		if err != nil {
			return nil, err
		}
	} else {
		if err = r.prepareTarget(ctx); err != nil {
			return nil, err
		}
		r.exists = true
	}
	if r.report.Reactions, err = src.reactionCount(ctx); err != nil {
		return nil, err
	}
	do := func(ctx context.Context) error {
		for _, step := range []func(context.Context) error{r.importLogins, r.importPortals, r.importGhosts, r.importMessages, r.markTakeovers} {
			if err := step(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	if opts.DryRun {
		err = do(ctx)
	} else {
		err = opts.Target.DoTxn(ctx, nil, do)
	}
	if err != nil {
		return nil, err
	}
	r.report.Namespaces = missingNamespaces(opts.Registration, opts.OldRegistration)
	r.report.RegistrationPath = opts.RegistrationPath
	if !opts.DryRun && opts.Registration != nil && len(r.report.Namespaces) > 0 {
		if err = addNamespaces(opts.Registration, opts.RegistrationPath, r.report.Namespaces); err != nil {
			return nil, err
		}
	}
	return r.report, nil
}

// prepareTarget creates or upgrades the tables the import writes to, as the
// gateway would at start.
func (r *run) prepareTarget(ctx context.Context) error {
	if err := r.dst.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to prepare Passerelle's database: %w", err)
	}
	if err := markerDB(r.opts.Target).Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to prepare the import tables: %w", err)
	}
	if r.tr.Network() == tgTranslator.Network(tgTranslator{}) {
		r.tgStore = telegram.NewChildStore(r.opts.Target, dbutil.ZeroLogger(zerolog.Ctx(ctx).Level(zerolog.WarnLevel)))
		if err := r.tgStore.Upgrade(ctx); err != nil {
			return err
		}
	}
	if r.tr.Network() == waid.Network {
		r.waStore = wastore.NewChild(r.opts.Target, dbutil.ZeroLogger(zerolog.Ctx(ctx).Level(zerolog.WarnLevel)), nil)
		if err := r.waStore.Upgrade(ctx); err != nil {
			return err
		}
	}
	return nil
}

func markerDB(db *dbutil.Database) *dbutil.Database {
	return db.Child(VersionTable, upgrades.Table, db.Log)
}

func (r *run) importLogins(ctx context.Context) error {
	logins, err := r.src.logins(ctx)
	if err != nil {
		return err
	}
	for _, login := range logins {
		detail := Login{UserMXID: login.UserMXID.String(), OldID: string(login.ID)}
		newID, err := r.tr.Login(login.ID)
		if err != nil {
			r.report.Logins.skipErr("", err)
			detail.Session = "not imported: " + err.Error()
			r.report.LoginDetails = append(r.report.LoginDetails, detail)
			continue
		}
		detail.NewID = string(newID)
		if r.exists {
			if existing, err := r.dst.UserLogin.GetByID(ctx, newID); err != nil {
				return fmt.Errorf("failed to check Passerelle's logins: %w", err)
			} else if existing != nil {
				r.loginsIn[newID] = true
				r.report.Logins.skip("already in Passerelle")
				detail.Session = "left as Passerelle has it (already logged in)"
				r.report.LoginDetails = append(r.report.LoginDetails, detail)
				continue
			}
		}
		newLogin, session, why := r.translateLogin(ctx, login, newID)
		if newLogin == nil {
			// A WhatsApp device is linked again (QR code or pairing
			// code), a Telegram account logged in again.
			again := "re-login needed: "
			if r.tr.Network() == waid.Network {
				again = "re-link needed: "
			}
			r.report.Logins.skip(again + why)
			detail.Session = again + why
			r.report.LoginDetails = append(r.report.LoginDetails, detail)
			continue
		}
		if !r.opts.DryRun {
			if err = r.ensureUser(ctx, login.UserMXID); err != nil {
				return err
			}
			if err = r.dst.UserLogin.Insert(ctx, newLogin); err != nil {
				return fmt.Errorf("failed to write login %s: %w", newID, err)
			}
			if err = session(ctx); err != nil {
				return err
			}
		}
		r.loginsIn[newID] = true
		r.report.Logins.Imported++
		detail.Session = "carried"
		r.report.LoginDetails = append(r.report.LoginDetails, detail)
	}
	return nil
}

// ensureUser writes the Matrix user of an imported login. Its management
// room is the old bot's: the gateway's bot opens its own when needed.
func (r *run) ensureUser(ctx context.Context, mxid id.UserID) error {
	if _, done := r.targetUsers[mxid]; done {
		return nil
	}
	existing, err := r.dst.User.GetByMXID(ctx, mxid)
	if err != nil {
		return fmt.Errorf("failed to check Passerelle's users: %w", err)
	}
	if existing == nil {
		old, err := r.src.db.User.GetByMXID(ctx, mxid)
		if err != nil {
			return fmt.Errorf("failed to read the old bridge's user: %w", err)
		}
		existing = &database.User{MXID: mxid}
		if old != nil {
			existing.AccessToken = old.AccessToken
		}
		if err = r.dst.User.Insert(ctx, existing); err != nil {
			return fmt.Errorf("failed to write user %s: %w", mxid, err)
		}
	}
	r.targetUsers[mxid] = existing
	return nil
}

func (r *run) importPortals(ctx context.Context) error {
	portals, err := r.src.db.Portal.GetAll(ctx)
	if err != nil {
		return fmt.Errorf("failed to read the old bridge's portals: %w", err)
	}
	// Parents (spaces, communities) first, each kind in a stable order.
	sort.SliceStable(portals, func(i, j int) bool {
		pi, pj := portals[i].ParentKey.ID == "", portals[j].ParentKey.ID == ""
		if pi != pj {
			return pi
		}
		if portals[i].ID != portals[j].ID {
			return portals[i].ID < portals[j].ID
		}
		return portals[i].Receiver < portals[j].Receiver
	})
	byKey := map[networkid.PortalKey]id.RoomID{}
	for _, p := range portals {
		if p.MXID == "" {
			r.report.Portals.skip("no Matrix room")
			continue
		}
		key, err := r.tr.Portal(p.PortalKey)
		if err != nil {
			r.report.Portals.skipErr("", err)
			continue
		}
		if kept, dup := byKey[key]; dup {
			r.report.Portals.skipWith("same chat as another imported room: Passerelle has one room for a chat shared by several logins",
				fmt.Sprintf("%s, kept %s", p.MXID, kept))
			continue
		}
		if r.exists {
			if existing, err := r.dst.Portal.GetByKey(ctx, key); err != nil {
				return fmt.Errorf("failed to check Passerelle's portals: %w", err)
			} else if existing != nil {
				r.report.Portals.skip("chat already bridged by Passerelle")
				continue
			}
			if existing, err := r.dst.Portal.GetByMXID(ctx, p.MXID); err != nil {
				return fmt.Errorf("failed to check Passerelle's portals: %w", err)
			} else if existing != nil {
				r.report.Portals.skip("room already bridged by Passerelle")
				continue
			}
		}
		out := r.translatePortal(p, key, byKey)
		if !r.opts.DryRun {
			if err = r.dst.Portal.Insert(ctx, out); err != nil {
				return fmt.Errorf("failed to write portal %s: %w", key, err)
			}
		}
		byKey[key] = p.MXID
		r.portals[p.PortalKey] = key
		r.takeover = append(r.takeover, out)
		r.report.Portals.Imported++
	}
	return nil
}

// translatePortal keeps the room and what it shows; what refers to the old
// connector's own formats (avatar IDs, metadata, capabilities) is dropped so
// that Passerelle's connector sets it afresh.
func (r *run) translatePortal(p *database.Portal, key networkid.PortalKey, imported map[networkid.PortalKey]id.RoomID) *database.Portal {
	out := &database.Portal{
		PortalKey:      key,
		MXID:           p.MXID,
		Name:           p.Name,
		Topic:          p.Topic,
		AvatarMXC:      p.AvatarMXC,
		AvatarHash:     p.AvatarHash,
		NameSet:        p.NameSet,
		TopicSet:       p.TopicSet,
		AvatarSet:      p.AvatarSet,
		NameIsCustom:   p.NameIsCustom,
		MessageRequest: p.MessageRequest,
		UserBlocked:    p.UserBlocked,
		RoomType:       p.RoomType,
		Disappear:      p.Disappear,
		Metadata:       emptyMeta(),
	}
	if p.OtherUserID != "" {
		if other, err := r.tr.Ghost(p.OtherUserID); err == nil {
			out.OtherUserID = other
		}
	}
	if p.RelayLoginID != "" {
		if relay, err := r.tr.Login(p.RelayLoginID); err == nil && r.loginsIn[relay] {
			out.RelayLoginID = relay
		}
	}
	if p.ParentKey.ID != "" {
		if parent, err := r.tr.Portal(p.ParentKey); err == nil {
			if _, ok := imported[parent]; ok {
				out.ParentKey = parent
			}
		}
	}
	return out
}

func (r *run) importGhosts(ctx context.Context) error {
	ghosts, err := r.src.ghosts(ctx)
	if err != nil {
		return err
	}
	for _, g := range ghosts {
		newID, err := r.tr.Ghost(g.ID)
		if err != nil {
			r.report.Ghosts.skipErr("", err)
			continue
		}
		if r.ghostsIn[newID] {
			r.report.Ghosts.skip("same person as another imported ghost")
			continue
		}
		if r.exists {
			if existing, err := r.dst.Ghost.GetByID(ctx, newID); err != nil {
				return fmt.Errorf("failed to check Passerelle's ghosts: %w", err)
			} else if existing != nil {
				r.ghostsIn[newID] = true
				r.report.Ghosts.skip("already in Passerelle")
				continue
			}
		}
		// The ghost gets a new Matrix ID in Passerelle's namespace: its
		// profile is not set there yet (name_set and avatar_set false),
		// so the gateway sets it from the name and avatar kept here.
		out := &database.Ghost{
			ID:          newID,
			Name:        g.Name,
			AvatarMXC:   g.AvatarMXC,
			AvatarHash:  g.AvatarHash,
			IsBot:       g.IsBot,
			Identifiers: g.Identifiers,
			Metadata:    emptyMeta(),
		}
		if !r.opts.DryRun {
			if err = r.dst.Ghost.Insert(ctx, out); err != nil {
				return fmt.Errorf("failed to write ghost %s: %w", newID, err)
			}
		}
		r.ghostsIn[newID] = true
		r.report.Ghosts.Imported++
	}
	return nil
}

// ensureGhost writes an empty ghost for a message sender the old bridge had
// no ghost row for (a message needs its sender's row).
func (r *run) ensureGhost(ctx context.Context, ghostID networkid.UserID) error {
	if r.ghostsIn[ghostID] {
		return nil
	}
	if r.exists {
		existing, err := r.dst.Ghost.GetByID(ctx, ghostID)
		if err != nil {
			return fmt.Errorf("failed to check Passerelle's ghosts: %w", err)
		}
		if existing != nil {
			r.ghostsIn[ghostID] = true
			return nil
		}
	}
	if !r.opts.DryRun {
		if err := r.dst.Ghost.Insert(ctx, &database.Ghost{ID: ghostID, Metadata: emptyMeta()}); err != nil {
			return fmt.Errorf("failed to write ghost %s: %w", ghostID, err)
		}
	}
	r.ghostsIn[ghostID] = true
	return nil
}

func (r *run) importMessages(ctx context.Context) error {
	return r.src.eachMessage(ctx, func(m *database.Message) error {
		key, ok := r.portals[m.Room]
		if !ok {
			r.report.Messages.skip("its room was not imported")
			return nil
		}
		newID, err := r.tr.Message(m.Room, m.ID)
		if err != nil {
			r.report.Messages.skipErr("", err)
			return nil
		}
		sender, err := r.tr.Ghost(m.SenderID)
		if err != nil {
			r.report.Messages.skipErr("sender: ", err)
			return nil
		}
		if r.exists {
			if existing, err := r.dst.Message.GetPartByMXID(ctx, m.MXID); err != nil {
				return fmt.Errorf("failed to check Passerelle's messages: %w", err)
			} else if existing != nil {
				r.report.Messages.skip("already in Passerelle")
				return nil
			}
			if existing, err := r.dst.Message.GetPartByID(ctx, key.Receiver, newID, m.PartID); err != nil {
				return fmt.Errorf("failed to check Passerelle's messages: %w", err)
			} else if existing != nil {
				r.report.Messages.skip("same remote message as another imported one")
				return nil
			}
		}
		out := &database.Message{
			ID:               newID,
			PartID:           m.PartID,
			MXID:             m.MXID,
			Room:             key,
			SenderID:         sender,
			SenderMXID:       m.SenderMXID,
			Timestamp:        m.Timestamp,
			EditCount:        m.EditCount,
			IsDoublePuppeted: m.IsDoublePuppeted,
			Metadata:         r.tr.MessageMeta(m.Room, m.ID),
		}
		if out.Metadata == nil {
			out.Metadata = emptyMeta()
		}
		if m.ThreadRoot != "" {
			out.ThreadRoot, _ = r.tr.Message(m.Room, m.ThreadRoot)
		}
		if m.ReplyTo.MessageID != "" {
			if reply, err := r.tr.Message(m.Room, m.ReplyTo.MessageID); err == nil {
				out.ReplyTo = networkid.MessageOptionalPartID{MessageID: reply, PartID: m.ReplyTo.PartID}
			}
		}
		if err = r.ensureGhost(ctx, sender); err != nil {
			return err
		}
		if !r.opts.DryRun {
			if err = r.dst.Message.Insert(ctx, out); err != nil {
				return fmt.Errorf("failed to write message %s: %w", newID, err)
			}
		}
		r.report.Messages.Imported++
		return nil
	})
}
