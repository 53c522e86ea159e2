package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
)

// Config is the `network:` section of the config file: one sub-section per
// network, each with an `enabled` switch next to that network's own keys.
//
//	network:
//	    telegram:
//	        enabled: true
//	        api_id: ...
//
// Gateway-wide components (AddComponent) have a section of their own under a
// reserved key beside the networks, such as `governance:`, because bridgev2's
// config has no other room for a connector's settings.
type Config struct {
	mu       sync.RWMutex
	networks []*Network
	// sections are the components' sections, in the order added.
	sections []section
	// data is what each connector's GetConfig returned to decode into.
	data    map[string]any
	example map[string]string
	upgrade map[string]up.Upgrader
	on      map[string]bool
}

var _ yaml.Unmarshaler = (*Config)(nil)

func newConfig(networks []*Network) *Config {
	c := &Config{
		networks: networks,
		data:     make(map[string]any, len(networks)),
		example:  make(map[string]string, len(networks)),
		upgrade:  make(map[string]up.Upgrader, len(networks)),
		on:       make(map[string]bool, len(networks)),
	}
	for _, n := range networks {
		example, data, upgrader := n.Connector.GetConfig()
		c.example[n.ID] = example
		c.data[n.ID] = data
		if upgrader == nil {
			upgrader = up.NoopUpgrader
		}
		c.upgrade[n.ID] = upgrader
		c.on[n.ID] = n.EnabledByDefault
	}
	return c
}

// section is a component's section of the config.
type section struct {
	key      string
	example  string
	data     any
	upgrader up.Upgrader
}

func (c *Config) addSection(key, example string, data any, upgrader up.Upgrader) {
	if upgrader == nil {
		upgrader = up.NoopUpgrader
	}
	c.mu.Lock()
	c.sections = append(c.sections, section{key: key, example: example, data: data, upgrader: upgrader})
	c.mu.Unlock()
}

func (c *Config) section(key string) (section, bool) {
	for _, s := range c.sections {
		if s.key == key {
			return s, true
		}
	}
	return section{}, false
}

func (c *Config) enabled(networkID string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.on[networkID]
}

// UnmarshalYAML decodes each network's section into that network's config.
// A network without a section keeps its defaults.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("network config must be a mapping, got %s", kindName(node.Kind))
	}
	sections := make(map[string]*yaml.Node, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		key := node.Content[i].Value
		if s, isSection := c.section(key); isSection {
			if val := node.Content[i+1]; val.Kind != 0 && !(val.Kind == yaml.ScalarNode && val.Tag == "!!null") && s.data != nil {
				if err := val.Decode(s.data); err != nil {
					return fmt.Errorf("network.%s: %w", key, err)
				}
			}
			continue
		}
		if _, known := c.data[key]; !known {
			return fmt.Errorf("network.%s: unknown network (known: %s)", key, strings.Join(c.networkIDs(), ", "))
		}
		sections[key] = node.Content[i+1]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.networks {
		section, ok := sections[n.ID]
		if !ok || section.Kind == 0 {
			continue
		}
		var sw struct {
			Enabled *bool `yaml:"enabled"`
		}
		if err := section.Decode(&sw); err != nil {
			return fmt.Errorf("network.%s.enabled: %w", n.ID, err)
		}
		if sw.Enabled != nil {
			c.on[n.ID] = *sw.Enabled
		}
		if data := c.data[n.ID]; data != nil {
			if err := section.Decode(data); err != nil {
				return fmt.Errorf("network.%s: %w", n.ID, err)
			}
		}
	}
	return nil
}

func (c *Config) networkIDs() []string {
	ids := make([]string, 0, len(c.networks))
	for _, n := range c.networks {
		ids = append(ids, n.ID)
	}
	return ids
}

// Example returns the example `network:` section: every network's own
// example, indented under its name, after its `enabled` switch.
func (c *Config) Example() string {
	var buf strings.Builder
	for i, n := range c.networks {
		if i > 0 {
			buf.WriteString("\n")
		}
		fmt.Fprintf(&buf, "# %s\n%s:\n", n.Connector.GetName().DisplayName, n.ID)
		buf.WriteString("    # Set to false to switch this network off: no login flows, no portals.\n")
		fmt.Fprintf(&buf, "    enabled: %s\n", strconv.FormatBool(n.EnabledByDefault))
		for line := range strings.SplitSeq(strings.TrimRight(c.example[n.ID], "\n"), "\n") {
			if line == "" {
				buf.WriteString("\n")
				continue
			}
			buf.WriteString("    ")
			buf.WriteString(line)
			buf.WriteString("\n")
		}
	}
	for _, s := range c.sections {
		fmt.Fprintf(&buf, "\n%s:\n", s.key)
		for line := range strings.SplitSeq(strings.TrimRight(s.example, "\n"), "\n") {
			if line != "" {
				buf.WriteString("    ")
				buf.WriteString(line)
			}
			buf.WriteString("\n")
		}
	}
	return buf.String()
}

// Upgrader copies every network's keys (and its switch) from an old config
// into the new example, each under its own prefix.
func (c *Config) Upgrader() up.Upgrader {
	upgraders := make([]up.Upgrader, 0, len(c.networks)*2)
	for _, n := range c.networks {
		id := n.ID
		upgraders = append(upgraders,
			up.SimpleUpgrader(func(helper up.Helper) { helper.Copy(up.Bool, id, "enabled") }),
			&up.ProxyUpgrader{Prefix: []string{id}, Target: c.upgrade[id]},
		)
	}
	for _, s := range c.sections {
		upgraders = append(upgraders, &up.ProxyUpgrader{Prefix: []string{s.key}, Target: s.upgrader})
	}
	return up.MergeUpgraders("", upgraders...)
}

// GetConfig is the NetworkConnector method: the example, the value to decode
// the `network:` section into, and the upgrader.
func (gw *Gateway) GetConfig() (example string, data any, upgrader up.Upgrader) {
	return gw.config.Example(), gw.config, gw.config.Upgrader()
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.DocumentNode:
		return "a document"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "nothing"
	}
}
