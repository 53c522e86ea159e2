package config

import (
	"fmt"
	"path/filepath"
)

// DatabaseFile is the SQLite database that the default config puts next to
// the config file.
const DatabaseFile = "passerelle.db"

// SQLiteURI returns the database URI of a SQLite file, as bridgev2 wants it.
func SQLiteURI(path string) string {
	return "file:" + path + "?_txlock=immediate"
}

// ApplyDefaults turns bridgev2's example config into Passerelle's: a SQLite
// database next to the config file (no set-up), and portals end-to-end
// encrypted up to the gateway, with the settings that work on homeservers that
// implement neither MSC4190 nor MSC3202 (Dendrite).
func ApplyDefaults(example []byte, configPath string) ([]byte, error) {
	doc, err := Parse(example)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(configPath))
	if err != nil {
		return nil, fmt.Errorf("failed to resolve the config directory: %w", err)
	}
	for _, kv := range []struct {
		path  string
		value any
	}{
		{"database.type", "sqlite3-fk-wal"},
		{"database.uri", SQLiteURI(filepath.Join(dir, DatabaseFile))},
		// Handle each remote event before the connector acknowledges it, so
		// that a crash cannot lose an event that was queued but not bridged.
		{"bridge.portal_event_buffer", 0},
		// A Matrix event the homeserver delivers again (its transaction
		// retried after a crash) is not sent again once it was recorded.
		{"bridge.deduplicate_matrix_messages", true},
		// A Matrix message that arrives while a network connection is being
		// re-established (after a restart or a drop) waits for it instead of
		// failing; kept under the homeserver's 30 s transaction timeout.
		{"bridge.send_reconnect_wait", "20s"},
		// A new portal gets the chat's recent history first (each network
		// caps it in its own backfill section, and governance filters it);
		// there is no batch sending on Dendrite, so it goes in as normal
		// timeline events, forward.
		{"backfill.enabled", true},
		{"backfill.max_initial_messages", 100},
		{"backfill.max_catchup_messages", 100},
		{"encryption.allow", true},
		{"encryption.default", true},
		{"encryption.require", false},
		{"encryption.appservice", false},
		{"encryption.msc4190", false},
		{"encryption.self_sign", false},
		{"encryption.pickle_key", "generate"},
		// The gateway's own secret (as_token of its double-puppet
		// registration) is put here by -g; bridgev2's placeholder goes.
		{"double_puppet.secrets", map[string]string{}},
	} {
		if err := doc.Set(kv.path, kv.value); err != nil {
			return nil, err
		}
	}
	return doc.Bytes()
}
