package appservice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	mxappservice "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/appservice/importer"
	"github.com/passerelle/passerelle/config"
)

// WantsImport reports whether the command line is `passerelle import ...`.
func WantsImport(args []string) bool {
	return len(args) > 0 && args[0] == "import"
}

const importUsage = `Usage: passerelle import --from-db <URI or SQLite path> --from-registration <file> --network whatsapp|telegram [--dry-run]
                         [-c config.yaml] [-r registration.yaml] [--from-bridge-id ID]

Brings the portals (their rooms kept), ghosts, message mappings and, where
possible, logins of a stopped mautrix-whatsapp or mautrix-telegram (bridgev2)
bridge into Passerelle's database, and adds the old bridge's user namespaces
to Passerelle's registration. --dry-run prints what would change and writes
nothing.
`

// Import runs `passerelle import` (args without "import") and returns the
// process exit code.
func Import(ctx context.Context, args []string, out, errOut io.Writer) int {
	flags := flag.NewFlagSet("passerelle import", flag.ContinueOnError)
	flags.SetOutput(errOut)
	flags.Usage = func() { fmt.Fprint(errOut, importUsage) }
	fromDB := flags.String("from-db", "", "the old bridge's database: a postgres:// URI or a SQLite file")
	fromReg := flags.String("from-registration", "", "the old bridge's registration file")
	network := flags.String("network", "", "the old bridge's network: whatsapp or telegram")
	fromBridgeID := flags.String("from-bridge-id", "", "bridge_id of the old bridge's rows (default: empty, as the mautrix bridges write)")
	dryRun := flags.Bool("dry-run", false, "print what would change, write nothing")
	cfgPath := flags.String("c", "config.yaml", "Passerelle's config")
	flags.StringVar(cfgPath, "config", "config.yaml", "Passerelle's config")
	regPath := flags.String("r", "registration.yaml", "Passerelle's registration")
	flags.StringVar(regPath, "registration", "registration.yaml", "Passerelle's registration")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *fromDB == "" || *fromReg == "" || *network == "" {
		flags.Usage()
		return 2
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: errOut, NoColor: true}).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	ctx = log.WithContext(ctx)
	report, err := runImport(ctx, importArgs{
		fromDB: *fromDB, fromReg: *fromReg, network: *network, fromBridgeID: *fromBridgeID,
		dryRun: *dryRun, cfgPath: *cfgPath, regPath: *regPath,
	})
	if err != nil {
		fmt.Fprintln(errOut, "Import failed:", err)
		return 1
	}
	report.Print(out)
	return 0
}

type importArgs struct {
	fromDB, fromReg, network, fromBridgeID string
	dryRun                                 bool
	cfgPath, regPath                       string
}

func runImport(ctx context.Context, a importArgs) (*importer.Report, error) {
	doc, err := config.Load(a.cfgPath)
	if err != nil {
		return nil, err
	}
	var dbCfg dbutil.Config
	if err = doc.Get("database", &dbCfg); err != nil {
		return nil, fmt.Errorf("%s: failed to read the database section: %w", a.cfgPath, err)
	}
	var store StorageConfig
	if doc.Has("network.storage") {
		if err = doc.Get("network.storage", &store); err != nil {
			return nil, fmt.Errorf("%s: failed to read network.storage: %w", a.cfgPath, err)
		}
	}
	applyStorage(&dbCfg, store)
	domain := doc.GetString("homeserver.domain")
	oldReg, err := mxappservice.LoadRegistration(a.fromReg)
	if err != nil {
		return nil, fmt.Errorf("failed to read the old registration: %w", err)
	}
	reg, err := mxappservice.LoadRegistration(a.regPath)
	if err != nil {
		return nil, fmt.Errorf("failed to read Passerelle's registration (run passerelle -g first): %w", err)
	}
	if reg.ID == oldReg.ID && reg.AppToken == oldReg.AppToken {
		return nil, errors.New("the old registration is Passerelle's own registration")
	}
	src, err := importer.OpenSource(a.fromDB)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	target, release, err := openImportTarget(dbCfg, a.dryRun)
	if err != nil {
		return nil, err
	}
	defer release()
	return importer.Run(ctx, importer.Options{
		Network:          a.network,
		Source:           src,
		SourceBridgeID:   networkid.BridgeID(a.fromBridgeID),
		OldRegistration:  oldReg,
		HomeserverDomain: domain,
		Target:           target,
		Registration:     reg,
		RegistrationPath: a.regPath,
		DryRun:           a.dryRun,
	})
}

// openImportTarget opens Passerelle's database as the gateway would (a
// private SQLite file, refused while a gateway runs on it). A dry run
// creates nothing: a SQLite file that does not exist yet reads as empty.
func openImportTarget(cfg dbutil.Config, dryRun bool) (*dbutil.Database, func(), error) {
	path := sqliteFiles(cfg)
	if dryRun {
		uri, dialect := cfg.URI, cfg.Type
		if path != "" {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				uri, dialect = "file::memory:", "sqlite3-fk-wal"
			}
		}
		db, err := dbutil.NewWithDialect(uri, dialect)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to open Passerelle's database: %w", err)
		}
		return db, func() { _ = db.Close() }, nil
	}
	if _, err := prepareDatabase(cfg); err != nil {
		return nil, nil, err
	}
	lock, err := lockSQLite(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("refusing to import: %w", err)
	}
	db, err := dbutil.NewWithDialect(cfg.URI, cfg.Type)
	if err != nil {
		if lock != nil {
			_ = lock.Close()
		}
		return nil, nil, fmt.Errorf("failed to open Passerelle's database: %w", err)
	}
	return db, func() {
		_ = db.Close()
		if lock != nil {
			_ = lock.Close()
		}
	}, nil
}

// startTakeover hands the rooms of an earlier import to the gateway's bot,
// in the background once the bridge runs; the returned function stops it
// and waits for it.
func startTakeover(m *mxmain.BridgeMain) (stop func()) {
	ctx, cancel := context.WithCancel(m.Log.With().Str("component", "import_takeover").Logger().WithContext(context.Background()))
	done := make(chan struct{})
	t := &importer.Takeover{
		DB:            m.Bridge.DB.Database,
		HomeserverURL: m.Config.Homeserver.Address,
		Bot:           m.Bridge.Bot.GetMXID(),
		ASToken:       m.Config.AppService.ASToken,
		Join: func(ctx context.Context, roomID id.RoomID) error {
			return m.Bridge.Bot.EnsureJoined(ctx, roomID)
		},
	}
	go func() {
		defer close(done)
		log := zerolog.Ctx(ctx)
		defer func() {
			if p := recover(); p != nil {
				log.Error().Any("panic", p).Msg("Takeover of imported rooms panicked")
			}
		}()
		res, err := t.Run(ctx)
		if err != nil {
			log.Err(err).Msg("Failed to take over imported rooms")
		} else if res.Done+res.Failed > 0 {
			log.Info().Int("taken_over", res.Done).Int("failed", res.Failed).Msg("Imported rooms taken over")
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
