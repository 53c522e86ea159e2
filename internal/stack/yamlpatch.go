package stack

import "github.com/passerelle/passerelle/config"

// YAMLDoc is a config file patched key by key, comments kept (config.Doc).
type YAMLDoc = config.Doc

// ErrNoPath is returned (wrapped) by YAMLDoc.Get for an absent path.
var ErrNoPath = config.ErrNoSuchKey

// ParseYAML parses one YAML document whose top level is a mapping.
func ParseYAML(data []byte) (*YAMLDoc, error) { return config.Parse(data) }

// LoadYAML reads and parses a YAML file.
func LoadYAML(path string) (*YAMLDoc, error) { return config.Load(path) }

// PatchYAMLFile sets dotted paths in a YAML file and writes it back.
func PatchYAMLFile(path string, set map[string]any) error { return config.PatchFile(path, set) }
