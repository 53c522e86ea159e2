// Package oldwhatsapp makes, for tests, the WhatsApp device store of a
// mautrix-whatsapp: whatsmeow's sqlstore tables (whatsmeow_*), created by
// whatsmeow's own sqlstore upgrade files and filled with the state of a real
// whatsmeow client linked to the WhatsApp simulator.
//
// whatsmeow's sqlstore package does not build against the go.mau.fi/util
// that mautrix-go pins (see bridges/whatsapp/wastore), so its upgrade files
// are read from the whatsmeow module Passerelle builds with, and the client
// runs on a scratch wastore whose rows are copied column for column (the two
// schemas have the same columns). Test code only: the product never imports
// it.
package oldwhatsapp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// VersionTable is sqlstore's version table.
const VersionTable = "whatsmeow_version"

// Tables are the suffixes of the tables both schemas have.
var Tables = []string{"device", "identity_keys", "pre_keys", "sessions", "sender_keys", "app_state_sync_keys",
	"app_state_version", "app_state_mutation_macs", "contacts", "chat_settings", "message_secrets", "privacy_tokens",
	"lid_map", "event_buffer"}

// Upgrades is whatsmeow's sqlstore upgrade table.
func Upgrades() (dbutil.UpgradeTable, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.mau.fi/whatsmeow").Output()
	if err != nil {
		return nil, fmt.Errorf("failed to find the whatsmeow module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "store", "sqlstore", "upgrades")
	fsys, ok := os.DirFS(dir).(interface {
		fs.ReadFileFS
		fs.ReadDirFS
	})
	if !ok {
		return nil, errors.New("os.DirFS cannot list and read")
	}
	return dbutil.BuildUpgradeTable().WithFS(fsys).Finish(), nil
}

// Schema creates whatsmeow's device tables in db as sqlstore does.
func Schema(ctx context.Context, db *dbutil.Database) error {
	table, err := Upgrades()
	if err != nil {
		return err
	}
	if err = db.Child(VersionTable, table, nil).Upgrade(ctx); err != nil {
		return fmt.Errorf("whatsmeow's sqlstore upgrades: %w", err)
	}
	return nil
}

// Device is the linked device Link made.
type Device struct {
	JID types.JID
	LID types.JID
}

// Link links a whatsmeow client to phone's account on srv (by QR code),
// receives a message from contact and answers it, so that both sides hold
// established Signal sessions; then it disconnects and writes the client's
// whole device store into db's whatsmeow tables (Schema first). scratch is
// an empty database for the client's own store. The simulator's root key
// must be set (wasim.UseRootPublicKey).
func Link(ctx context.Context, srv *wasim.Server, phone, contact string, scratch, db *dbutil.Database) (*Device, error) {
	store := wastore.NewChild(scratch, nil, nil)
	if err := store.Upgrade(ctx); err != nil {
		return nil, err
	}
	cli := whatsmeow.NewClient(store.NewDevice(), nil)
	srv.RouteClient(cli)
	msgs := make(chan *events.Message, 16)
	connected := make(chan struct{}, 4)
	cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.Message:
			select {
			case msgs <- e:
			default:
			}
		case *events.Connected:
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer cli.Disconnect()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		return nil, err
	}
	if err = cli.Connect(); err != nil {
		return nil, err
	}
	select {
	case item := <-qr:
		if err = srv.ScanQR(ctx, phone, item.Code); err != nil {
			return nil, fmt.Errorf("ScanQR: %w", err)
		}
	case <-ctx.Done():
		return nil, errors.New("no QR code")
	}
	select {
	case <-connected:
	case <-ctx.Done():
		return nil, errors.New("the old bridge's client never connected")
	}
	if _, err = srv.SendText(ctx, contact, phone, "hello old bridge"); err != nil {
		return nil, fmt.Errorf("the contact's first message: %w", err)
	}
	select {
	case m := <-msgs:
		if m.Message.GetConversation() != "hello old bridge" {
			return nil, fmt.Errorf("the old client got %q", m.Message.GetConversation())
		}
	case <-ctx.Done():
		return nil, errors.New("the old client never got the contact's message")
	}
	contactJID := types.NewJID(strings.TrimPrefix(contact, "+"), types.DefaultUserServer)
	sent, err := cli.SendMessage(ctx, contactJID, &waE2E.Message{Conversation: proto.String("hello from the old bridge")})
	if err != nil {
		return nil, fmt.Errorf("the old client's answer: %w", err)
	}
	if _, err = srv.WaitMessage(ctx, phone, contact, func(m wasim.Message) bool { return m.ID == sent.ID }); err != nil {
		return nil, fmt.Errorf("the contact never got the old client's answer: %w", err)
	}
	if err = srv.AwaitReceipts(ctx, phone); err != nil {
		return nil, fmt.Errorf("the old client's receipts: %w", err)
	}
	// whatsmeow acks from goroutines that race Disconnect: let the
	// server see the acks first (as the simulator's own tests do).
	acked, deadline := time.NewTicker(10*time.Millisecond), time.Now().Add(2*time.Second)
	for srv.Unacked() > 0 && time.Now().Before(deadline) {
		<-acked.C
	}
	acked.Stop()
	dev := &Device{JID: *cli.Store.ID, LID: cli.Store.GetLID()}
	cli.Disconnect()
	if err = Copy(ctx, scratch, db); err != nil {
		return nil, err
	}
	return dev, nil
}

// Copy writes every row of wastore's tables in from into the matching
// whatsmeow_* table in to ("" becomes NULL where sqlstore keeps NULL).
func Copy(ctx context.Context, from, to *dbutil.Database) error {
	for _, table := range Tables {
		if err := copyTable(ctx, from, to, table); err != nil {
			return fmt.Errorf("copy into whatsmeow_%s: %w", table, err)
		}
	}
	return nil
}

func copyTable(ctx context.Context, from, to *dbutil.Database, table string) error {
	rows, err := from.Query(ctx, "SELECT * FROM whatsapp_"+table)
	if err != nil {
		return err
	}
	cols, err := rows.Columns()
	if err != nil {
		_ = rows.Close()
		return err
	}
	var all [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err = rows.Scan(ptrs...); err != nil {
			_ = rows.Close()
			return err
		}
		for i, c := range cols {
			if s, ok := vals[i].(string); ok && s == "" && table == "device" && (c == "lid" || c == "facebook_uuid") {
				vals[i] = nil
			}
		}
		all = append(all, vals)
	}
	if err = rows.Close(); err != nil {
		return err
	}
	placeholders := make([]string, len(cols))
	for i := range cols {
		placeholders[i] = fmt.Sprintf("$%d", i+1)
	}
	q := fmt.Sprintf("INSERT INTO whatsmeow_%s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(placeholders, ", "))
	for _, vals := range all {
		if _, err = to.Exec(ctx, q, vals...); err != nil {
			return err
		}
	}
	return nil
}
