// Package config holds what Passerelle changes in the bridge config file:
// its defaults on top of bridgev2's example, and a small helper to read and
// set keys in a YAML document without losing its comments.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrNoSuchKey is returned (wrapped) when a path names a key that is absent.
var ErrNoSuchKey = errors.New("no such key")

// Doc is a YAML document that keeps its comments and key order.
type Doc struct {
	root yaml.Node
}

// Parse reads a YAML document.
func Parse(data []byte) (*Doc, error) {
	d := &Doc{}
	if err := yaml.Unmarshal(data, &d.root); err != nil {
		return nil, fmt.Errorf("failed to parse YAML: %w", err)
	}
	if d.root.Kind != yaml.DocumentNode || len(d.root.Content) != 1 || d.root.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("failed to parse YAML: the document is not a mapping")
	}
	return d, nil
}

// Bytes writes the document back with four-space indentation, as bridgev2 does.
func (d *Doc) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(&d.root); err != nil {
		return nil, fmt.Errorf("failed to write YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("failed to write YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// Set replaces the value at a dotted path (e.g. "database.uri") with value,
// creating missing mappings on the way. value is encoded as YAML.
func (d *Doc) Set(path string, value any) error {
	var node yaml.Node
	if err := node.Encode(value); err != nil {
		return fmt.Errorf("failed to encode value for %s: %w", path, err)
	}
	cur := d.root.Content[0]
	keys := strings.Split(path, ".")
	for i, key := range keys {
		if cur.Kind != yaml.MappingNode {
			return fmt.Errorf("failed to set %s: %s is not a mapping", path, strings.Join(keys[:i], "."))
		}
		idx := findKey(cur, key)
		if i == len(keys)-1 {
			if idx < 0 {
				cur.Content = append(cur.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &node)
			} else {
				old := cur.Content[idx+1]
				node.HeadComment, node.LineComment, node.FootComment = old.HeadComment, old.LineComment, old.FootComment
				cur.Content[idx+1] = &node
			}
			return nil
		}
		if idx < 0 {
			child := &yaml.Node{Kind: yaml.MappingNode}
			cur.Content = append(cur.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, child)
			cur = child
		} else {
			cur = cur.Content[idx+1]
		}
	}
	return nil
}

// Get decodes the value at a dotted path into out.
func (d *Doc) Get(path string, out any) error {
	cur := d.root.Content[0]
	for _, key := range strings.Split(path, ".") {
		if cur.Kind != yaml.MappingNode {
			return fmt.Errorf("%w: %s", ErrNoSuchKey, path)
		}
		idx := findKey(cur, key)
		if idx < 0 {
			return fmt.Errorf("%w: %s", ErrNoSuchKey, path)
		}
		cur = cur.Content[idx+1]
	}
	if err := cur.Decode(out); err != nil {
		return fmt.Errorf("failed to decode %s: %w", path, err)
	}
	return nil
}

func findKey(mapping *yaml.Node, key string) int {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return i
		}
	}
	return -1
}
