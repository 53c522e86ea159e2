package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"maunium.net/go/mautrix/appservice"
)

// missingNamespaces returns the old bridge's user namespaces (its ghosts
// and its bot) that Passerelle's registration does not claim yet: with
// them the gateway may act as the old ghosts (?user_id=) and as the old bot
// once the old registration is gone.
func missingNamespaces(reg, old *appservice.Registration) []string {
	var have []string
	if reg != nil {
		for _, ns := range reg.Namespaces.UserIDs {
			have = append(have, ns.Regex)
		}
	}
	var missing []string
	for _, ns := range old.Namespaces.UserIDs {
		if ns.Regex != "" && !slices.Contains(have, ns.Regex) && !slices.Contains(missing, ns.Regex) {
			missing = append(missing, ns.Regex)
		}
	}
	return missing
}

// addNamespaces adds the regexes to the registration, non-exclusive: while
// the old registration is still loaded (it claims them exclusively) both
// may act as those users; the administrator can make them exclusive once
// the old one is removed. The file is replaced atomically and stays private.
func addNamespaces(reg *appservice.Registration, path string, regexes []string) error {
	for _, regex := range regexes {
		reg.Namespaces.UserIDs = append(reg.Namespaces.UserIDs, appservice.Namespace{Regex: regex, Exclusive: false})
	}
	data, err := reg.YAML()
	if err != nil {
		return fmt.Errorf("failed to encode the registration: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".registration-*.yaml")
	if err != nil {
		return fmt.Errorf("failed to write the registration: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.WriteString(data); err == nil {
			err = tmp.Close()
		}
	}
	if err != nil {
		_ = tmp.Close()
		return fmt.Errorf("failed to write the registration: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to replace the registration: %w", err)
	}
	return nil
}
