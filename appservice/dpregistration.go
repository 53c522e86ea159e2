package appservice

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/config"
)

// The as_token method of bridgev2's automatic double puppeting: a secret
// `as_token:<token>` in double_puppet.secrets for the gateway's homeserver,
// whose token belongs to a second appservice registration.
const asTokenSecretPrefix = "as_token:"

// dpRegistration is the second appservice registration: no URL (the
// homeserver pushes it nothing), its own random tokens and sender, and a
// non-exclusive namespace over the staff accounts, so that the gateway may
// act as a staff member (?user_id=) without claiming their IDs.
type dpRegistration struct {
	ID              string          `yaml:"id"`
	URL             *string         `yaml:"url"`
	ASToken         string          `yaml:"as_token"`
	HSToken         string          `yaml:"hs_token"`
	SenderLocalpart string          `yaml:"sender_localpart"`
	RateLimited     bool            `yaml:"rate_limited"`
	Namespaces      dpRegNamespaces `yaml:"namespaces"`
}

type dpRegNamespaces struct {
	Users []dpRegNamespace `yaml:"users"`
}

type dpRegNamespace struct {
	Regex     string `yaml:"regex"`
	Exclusive bool   `yaml:"exclusive"`
}

// DoublePuppetUsersRegex is the default namespace of the double-puppet
// registration: every user of the homeserver.
func DoublePuppetUsersRegex(domain string) string {
	return "^@.*:" + regexp.QuoteMeta(domain) + "$"
}

func wantsRegistration(args []string) bool {
	return slices.Contains(args, "-g") || slices.Contains(args, "--generate-registration")
}

func registrationPathFromArgs(args []string) string {
	path := "registration.yaml"
	for i, arg := range args {
		switch {
		case (arg == "-r" || arg == "--registration") && i+1 < len(args):
			path = args[i+1]
		case strings.HasPrefix(arg, "--registration="):
			path = strings.TrimPrefix(arg, "--registration=")
		}
	}
	return path
}

// DoublePuppetRegistrationPath is where the double-puppet registration of a
// config goes: network.double_puppet.registration, relative to the main
// registration's directory. It is "" when double puppeting is off.
func DoublePuppetRegistrationPath(doc *config.Doc, mainRegistration string) string {
	enabled := true
	if doc.Has("network.double_puppet.enabled") {
		if err := doc.Get("network.double_puppet.enabled", &enabled); err != nil {
			enabled = true
		}
	}
	if !enabled {
		return ""
	}
	name := doc.GetString("network.double_puppet.registration")
	if name == "" {
		name = DefaultDoublePuppetRegistration
	}
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(mainRegistration), name)
}

// writeDoublePuppetRegistration runs with -g, before bridgev2 writes the
// main registration: it writes (or refreshes) the double-puppet
// registration with mode 0600 and puts its secret into the config's
// double_puppet.secrets for the homeserver's domain. An existing
// registration keeps its tokens, so that a homeserver that loaded it goes
// on accepting them. It prints where the file is, never the token.
func writeDoublePuppetRegistration(args []string) error {
	cfgPath := configPathFromArgs(args)
	regPath := registrationPathFromArgs(args)
	doc, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	path := DoublePuppetRegistrationPath(doc, regPath)
	if path == "" {
		return nil
	}
	domain := doc.GetString("homeserver.domain")
	if domain == "" || domain == "example.com" {
		// bridgev2 refuses -g the same way, with its own message.
		return nil
	}
	reg := &dpRegistration{}
	if data, err := os.ReadFile(path); err == nil {
		if err = yaml.Unmarshal(data, reg); err != nil {
			return fmt.Errorf("failed to read %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	if reg.ASToken == "" || reg.HSToken == "" || reg.SenderLocalpart == "" {
		reg = &dpRegistration{ASToken: randomToken(32), HSToken: randomToken(32), SenderLocalpart: "passerelle-doublepuppet-" + randomToken(8)}
	}
	reg.ID = "passerelle-doublepuppet"
	reg.URL = nil
	reg.RateLimited = false
	usersRegex := doc.GetString("network.double_puppet.users_regex")
	if usersRegex == "" {
		usersRegex = DoublePuppetUsersRegex(domain)
	}
	reg.Namespaces.Users = []dpRegNamespace{{Regex: usersRegex, Exclusive: false}}
	data, err := yaml.Marshal(reg)
	if err != nil {
		return err
	}
	if err = restrictFile(path); err != nil {
		return err
	}
	if err = os.WriteFile(path, data, privateFile); err != nil {
		return fmt.Errorf("failed to write the double-puppet registration: %w", err)
	}
	if err = doc.SetPath([]string{"double_puppet", "secrets", domain}, asTokenSecretPrefix+reg.ASToken); err != nil {
		return err
	}
	if err = doc.Save(cfgPath); err != nil {
		return err
	}
	fmt.Println("Double-puppet registration written to", path, "- install it in the homeserver beside the main registration.")
	return nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
