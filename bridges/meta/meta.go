// Package meta lets several network connectors share bridgev2's metadata
// columns.
//
// bridgev2 asks the NetworkConnector for exactly one metadata type per table,
// without telling it which row it is about to load. The gateway therefore
// hands bridgev2 a *Lazy for every table: it keeps the stored JSON as it is and
// decodes it into the network connector's own type the first time that
// connector asks for it with Get. A connector that runs on its own (outside
// the gateway) gets its own type back directly, so the same code works in both
// settings.
package meta

import (
	"encoding/json"
	"fmt"
	"sync"
)

// Lazy holds metadata loaded from the database until a connector claims it.
type Lazy struct {
	mu  sync.Mutex
	raw json.RawMessage
	val any
}

var (
	_ json.Marshaler   = (*Lazy)(nil)
	_ json.Unmarshaler = (*Lazy)(nil)
)

// New returns an empty Lazy; it is the constructor the gateway gives bridgev2.
func New() any {
	return &Lazy{}
}

// UnmarshalJSON keeps a copy of the stored JSON.
func (l *Lazy) UnmarshalJSON(data []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw = append(l.raw[:0], data...)
	l.val = nil
	return nil
}

// MarshalJSON writes the claimed value if there is one, else the stored JSON unchanged.
func (l *Lazy) MarshalJSON() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.val != nil {
		return json.Marshal(l.val)
	}
	if len(l.raw) == 0 {
		return []byte("{}"), nil
	}
	return l.raw, nil
}

// Get returns the metadata of type *T held by v, decoding it on first use.
//
// v is whatever bridgev2 stored in a Metadata field: a *T set by the connector
// itself, a *Lazy loaded by the gateway, or nil. For nil, a value of another
// type, or stored JSON that does not decode, Get returns a fresh zero *T that
// is not attached to anything (the stored JSON stays as it was); use Decode to
// see the error.
func Get[T any](v any) *T {
	out, err := Decode[T](v)
	if err != nil {
		return new(T)
	}
	return out
}

// Decode is Get with the reason when the value cannot be had.
func Decode[T any](v any) (*T, error) {
	switch typed := v.(type) {
	case *T:
		return typed, nil
	case *Lazy:
		return claim[T](typed)
	case nil:
		return new(T), nil
	default:
		return nil, fmt.Errorf("metadata has type %T, want *%T or *meta.Lazy", v, *new(T))
	}
}

func claim[T any](l *Lazy) (*T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if existing, ok := l.val.(*T); ok {
		return existing, nil
	}
	out := new(T)
	if len(l.raw) > 0 && string(l.raw) != "null" {
		if err := json.Unmarshal(l.raw, out); err != nil {
			return nil, fmt.Errorf("failed to decode stored metadata into %T: %w", out, err)
		}
	}
	l.val = out
	return out, nil
}
