package appservice

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.mau.fi/util/dbutil"
)

// The gateway's files hold tokens, keys and (while held for approval)
// messages: they are readable by the gateway's user only.
const (
	privateFile = 0o600
	privateDir  = 0o700
)

// sqliteFiles returns the database file a SQLite URI names, or "" for an
// in-memory database or another dialect.
func sqliteFiles(cfg dbutil.Config) string {
	if dialect, err := dbutil.ParseDialect(cfg.Type); err != nil || dialect != dbutil.SQLite {
		return ""
	}
	path, query, _ := strings.Cut(cfg.URI, "?")
	path = strings.TrimPrefix(path, "file:")
	if unescaped, err := url.PathUnescape(path); err == nil {
		path = unescaped
	}
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		return ""
	}
	return path
}

// prepareDatabase makes sure that a SQLite database is private before
// bridgev2 opens it: a missing directory is made 0700, a missing database
// file is created empty with 0600 (SQLite then gives its -wal and -shm files
// the mode of the database file), and existing database, -wal and -shm files
// readable by others are narrowed to 0600. An existing directory is left as
// it is (it may be shared); prepareDatabase returns it as looseDir when
// other users can enter it, for a warning.
func prepareDatabase(cfg dbutil.Config) (looseDir string, err error) {
	path := sqliteFiles(cfg)
	if path == "" {
		return "", nil
	}
	dir := filepath.Dir(path)
	if _, err = os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, privateDir); err != nil {
			return "", fmt.Errorf("failed to create the database directory: %w", err)
		}
		// MkdirAll's mode passes through the umask; say it once more.
		if err = os.Chmod(dir, privateDir); err != nil {
			return "", fmt.Errorf("failed to restrict the database directory: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("failed to check the database directory: %w", err)
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, privateFile)
	if err == nil {
		err = file.Close()
	} else if errors.Is(err, fs.ErrExist) {
		err = nil
	}
	if err != nil {
		return "", fmt.Errorf("failed to create the database file: %w", err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if err = restrictFile(name); err != nil {
			return "", err
		}
	}
	if info, err := os.Stat(dir); err == nil && info.Mode().Perm()&0o077 != 0 {
		looseDir = dir
	}
	return looseDir, nil
}

// restrictFile narrows an existing file to 0600.
func restrictFile(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("failed to check %s: %w", path, err)
	}
	if info.Mode().Perm()&^privateFile != 0 {
		if err = os.Chmod(path, privateFile); err != nil {
			return fmt.Errorf("failed to restrict %s to mode 0600: %w", path, err)
		}
	}
	return nil
}

// restrictRegistration narrows an existing registration file before -g
// rewrites it: os.WriteFile keeps the mode of a file that exists.
func restrictRegistration(args []string) error {
	if !slices.Contains(args, "-g") && !slices.Contains(args, "--generate-registration") {
		return nil
	}
	path := "registration.yaml"
	for i, arg := range args {
		switch {
		case (arg == "-r" || arg == "--registration") && i+1 < len(args):
			path = args[i+1]
		case strings.HasPrefix(arg, "--registration="):
			path = strings.TrimPrefix(arg, "--registration=")
		}
	}
	return restrictFile(path)
}
