package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the gateway's SQLite driver (sqlite3-fk-wal)
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	tgconn "github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// coldAccount is one staff account of the cold-start database: logged in
// to the simulator once, as the gateway would, and its MTProto session.
type coldAccount struct {
	acct *tgsim.Account
	sess *session.Data
}

// loginConcurrency bounds the harness's own logins while it builds the
// database (the gateway is not running then). One at a time: gotd's
// tgtest server, under the simulator, reads its auth-key map under the
// wrong mutex (users.getSession locks connsMux), so that two key
// exchanges at once race on it (go test -race sees it).
const loginConcurrency = 1

// telegramSession logs a gotd client in to the simulator by phone and code
// and returns its session: a real auth key the simulator knows, bound to
// the account, exactly what the gateway's phone login stores.
func telegramSession(ctx context.Context, sim *tgsim.Server, phone string) (*session.Data, error) {
	storage := new(session.StorageMemory)
	opts := sim.ClientOptions()
	opts.SessionStorage = storage
	client := telegram.NewClient(1, "sim", opts)
	err := client.Run(ctx, func(ctx context.Context) error {
		sent, err := client.Auth().SendCode(ctx, phone, auth.SendCodeOptions{})
		if err != nil {
			return err
		}
		code, ok := sim.LastCode(phone)
		sentCode, isCode := sent.(*tg.AuthSentCode)
		if !ok || !isCode {
			return errors.New("the simulator issued no login code")
		}
		_, err = client.Auth().SignIn(ctx, phone, code, sentCode.PhoneCodeHash)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("login of %s: %w", phone, err)
	}
	return (&session.Loader{Storage: storage}).Load(ctx)
}

// createColdAccounts creates the staff accounts and the contacts on the
// simulator, and logs every staff account in (loginConcurrency at a time).
func createColdAccounts(ctx context.Context, sim *tgsim.Server, logins, contacts int) ([]coldAccount, []*tgsim.Account, error) {
	staff := make([]coldAccount, logins)
	for i := range staff {
		a, err := sim.CreateAccount(tgsim.AccountSpec{Phone: fmt.Sprintf("+1555100%04d", i), FirstName: "Staff", LastName: strconv.Itoa(i)})
		if err != nil {
			return nil, nil, err
		}
		staff[i].acct = a
	}
	peers := make([]*tgsim.Account, contacts)
	for i := range peers {
		a, err := sim.CreateAccount(tgsim.AccountSpec{Phone: fmt.Sprintf("+1555200%04d", i), FirstName: "Contact", LastName: strconv.Itoa(i)})
		if err != nil {
			return nil, nil, err
		}
		peers[i] = a
	}
	sem := make(chan struct{}, loginConcurrency)
	errs := make([]error, logins)
	var wg sync.WaitGroup
	for i := range staff {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			staff[i].sess, errs[i] = telegramSession(ctx, sim, staff[i].acct.Phone)
		}()
	}
	wg.Wait()
	return staff, peers, errors.Join(errs...)
}

// coldPortalRoom is the room ID written in portal row i. The rooms do not
// exist on the homeserver: creating 10,000 rooms on Dendrite would take
// hours, and a gateway at start does not touch a portal's room until an
// event of its chat arrives.
func coldPortalRoom(i int, server string) id.RoomID {
	return id.RoomID(fmt.Sprintf("!cold%05d:%s", i, server))
}

// seedColdDatabase writes the logins, their sessions and the portals into
// the (stopped) gateway's SQLite database, through bridgev2's own queries
// and the Telegram connector's session store, as a gateway that ran for a
// while would have them: one user (the bench user, whose management room
// the gateway already knows) with every login, and portals DMs between
// each login and the contacts, dealt round robin.
func seedColdDatabase(ctx context.Context, dbPath, server string, owner id.UserID, staff []coldAccount, peers []*tgsim.Account, portals int) error {
	db, err := dbutil.NewWithDialect("file:"+dbPath+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		return err
	}
	defer db.Close()
	var bridgeID string
	if err = db.QueryRow(ctx, `SELECT bridge_id FROM "user" WHERE mxid=$1`, owner).Scan(&bridgeID); err != nil {
		return fmt.Errorf("the gateway has no user row for %s (the management room): %w", owner, err)
	}
	empty := func() any { return &map[string]any{} }
	bdb := database.New(networkid.BridgeID(bridgeID), database.MetaTypes{
		Portal: empty, Ghost: empty, Message: empty, Reaction: empty,
		UserLogin: func() any { return &tgid.UserLoginMetadata{} },
	}, db)
	store := tgconn.NewChildStore(db, dbutil.ZeroLogger(zerolog.Nop()))
	return db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, s := range staff {
			if err := bdb.UserLogin.Insert(ctx, &database.UserLogin{
				UserMXID:   owner,
				ID:         tgid.MakeUserLoginID(s.acct.ID),
				RemoteName: s.acct.FirstName + " " + s.acct.LastName,
				Metadata:   &tgid.UserLoginMetadata{Phone: s.acct.Phone},
			}); err != nil {
				return fmt.Errorf("login row: %w", err)
			}
			if err := (&session.Loader{Storage: store.Session(s.acct.ID)}).Save(ctx, s.sess); err != nil {
				return fmt.Errorf("session row: %w", err)
			}
		}
		// The contacts' ghosts, with the profile a gateway that bridged
		// their messages has (so that loading a portal does not fetch it).
		for _, p := range peers {
			if err := bdb.Ghost.Insert(ctx, &database.Ghost{
				ID: tgid.MakeUserID(p.ID), Name: p.FirstName + " " + p.LastName,
				NameSet: true, AvatarSet: true, ContactInfoSet: true, Metadata: empty(),
			}); err != nil {
				return fmt.Errorf("ghost row: %w", err)
			}
		}
		yes := true
		for i := range portals {
			s, p := staff[i%len(staff)], peers[(i/len(staff))%len(peers)]
			key := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerUser, ID: p.ID}, tgid.MakeUserLoginID(s.acct.ID))
			if err := bdb.Portal.Insert(ctx, &database.Portal{
				PortalKey:   key,
				MXID:        coldPortalRoom(i, server),
				OtherUserID: tgid.MakeUserID(p.ID),
				Name:        p.FirstName + " " + p.LastName,
				NameSet:     true,
				RoomType:    database.RoomTypeDM,
				Metadata:    empty(),
			}); err != nil {
				return fmt.Errorf("portal row %d: %w", i, err)
			}
			// The staff member is in the portal, which is in their
			// space, as after its creation.
			if err := bdb.UserPortal.Put(ctx, &database.UserPortal{
				UserMXID: owner, LoginID: tgid.MakeUserLoginID(s.acct.ID), Portal: key, InSpace: &yes, Preferred: &yes,
			}); err != nil {
				return fmt.Errorf("user portal row %d: %w", i, err)
			}
			// The login has seen the contact (the DM exists): its access
			// hash is in the connector's store, as after any message.
			if err := store.PutUser(ctx, s.acct.ID, p.ID, p.AccessHash, p.Username); err != nil {
				return fmt.Errorf("access hash row %d: %w", i, err)
			}
		}
		return nil
	})
}

// coldPair is the staff account and the contact of portal i.
func coldPair(i int, staff []coldAccount, peers []*tgsim.Account) (staffID, peerID int64) {
	return staff[i%len(staff)].acct.ID, peers[(i/len(staff))%len(peers)].ID
}
