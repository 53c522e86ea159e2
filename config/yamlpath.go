// Package config holds what Passerelle changes in the bridge config file:
// its defaults on top of bridgev2's example, and a small helper to read and
// set keys in a YAML document without losing its comments.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Doc is a YAML document kept as a node tree, so that a config file can be
// patched key by key while its comments and key order survive.
type Doc struct {
	root *yaml.Node
}

// ErrNoSuchKey is returned (wrapped) by Get when the dotted path does not exist.
var ErrNoSuchKey = errors.New("no such key")

// Parse parses one YAML document.
func Parse(data []byte) (*Doc, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("failed to parse YAML: %w", err)
	}
	if root.Kind == 0 {
		root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("failed to parse YAML: top level is not a mapping")
	}
	return &Doc{root: &root}, nil
}

// Load reads and parses a YAML file.
func Load(path string) (*Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	return Parse(data)
}

// Bytes encodes the document.
func (d *Doc) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(d.root); err != nil {
		return nil, fmt.Errorf("failed to encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("failed to encode YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// Save writes the document to path with mode 0600 (config files hold secrets).
func (d *Doc) Save(path string) error {
	data, err := d.Bytes()
	if err != nil {
		return err
	}
	if err = os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// Set replaces (or creates) the value at a dotted path such as
// "network.telegram.test_server.dc". Missing intermediate mappings are
// created. value is any Go value yaml.v3 can encode (scalars, maps, slices,
// structs with yaml tags). A key that itself contains dots can be reached with
// SetPath.
func (d *Doc) Set(path string, value any) error {
	return d.SetPath(strings.Split(path, "."), value)
}

// SetPath is Set with the path already split into keys.
func (d *Doc) SetPath(keys []string, value any) error {
	var valNode yaml.Node
	if err := valNode.Encode(value); err != nil {
		return fmt.Errorf("failed to encode value for %s: %w", strings.Join(keys, "."), err)
	}
	node := d.root.Content[0]
	for i, key := range keys {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("failed to set %s: %s is not a mapping", strings.Join(keys, "."), strings.Join(keys[:i], "."))
		}
		idx := mappingIndex(node, key)
		last := i == len(keys)-1
		switch {
		case idx >= 0 && last:
			// Keep the comments of the old value.
			old := node.Content[idx+1]
			valNode.HeadComment, valNode.LineComment, valNode.FootComment = old.HeadComment, old.LineComment, old.FootComment
			node.Content[idx+1] = &valNode
		case idx >= 0:
			child := node.Content[idx+1]
			if isNull(child) {
				// An empty placeholder such as "network:": make it a mapping.
				*child = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: child.HeadComment, LineComment: child.LineComment}
			}
			node = child
		case last:
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &valNode)
		default:
			child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
			node = child
		}
	}
	return nil
}

// Get decodes the value at a dotted path into out (a pointer).
func (d *Doc) Get(path string, out any) error {
	node := d.root.Content[0]
	for _, key := range strings.Split(path, ".") {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("%w: %s", ErrNoSuchKey, path)
		}
		idx := mappingIndex(node, key)
		if idx < 0 {
			return fmt.Errorf("%w: %s", ErrNoSuchKey, path)
		}
		node = node.Content[idx+1]
	}
	if err := node.Decode(out); err != nil {
		return fmt.Errorf("failed to decode %s: %w", path, err)
	}
	return nil
}

// GetString returns the scalar at a dotted path, or "" when it is absent.
func (d *Doc) GetString(path string) string {
	var s string
	if err := d.Get(path, &s); err != nil {
		return ""
	}
	return s
}

// Has reports whether the dotted path exists.
func (d *Doc) Has(path string) bool {
	var n yaml.Node
	return d.Get(path, &n) == nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || (n.Tag == "" && (n.Value == "" || n.Value == "~" || n.Value == "null")))
}

func mappingIndex(node *yaml.Node, key string) int {
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// PatchFile loads path, applies every dotted-path assignment in set, and
// writes it back.
func PatchFile(path string, set map[string]any) error {
	doc, err := Load(path)
	if err != nil {
		return err
	}
	for k, v := range set {
		if err = doc.Set(k, v); err != nil {
			return err
		}
	}
	return doc.Save(path)
}
