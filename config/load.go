package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML file at path over Default and validates the result. Every
// problem is reported at once, each starting with the file, line and key path.
// Keys that only matrix-media-repo implements are not errors; Warnings lists them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for bytes already read; name labels positions in errors.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		errs = append(errs, expandEnv(name, root, lookupEnv)...)
		w := keyWalker{file: name}
		w.walk(root, reflect.TypeOf(*cfg), "", "")
		errs = append(errs, w.errs...)
		cfg.warnings = w.warnings
		if err := root.Decode(cfg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	cfg.dropDisabledDatastores()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.buildHosts()
	return cfg, nil
}

// dropDisabledDatastores removes the datastores with enabled: false, with a
// notice each: they are never used, whatever their type or options.
func (c *Config) dropDisabledDatastores() {
	kept := c.Datastores[:0]
	for i, ds := range c.Datastores {
		if ds.Enabled != nil && !*ds.Enabled {
			// One line for it: what its options would do does not matter.
			prefix := fmt.Sprintf(": datastores[%d].", i)
			c.warnings = slices.DeleteFunc(c.warnings, func(w string) bool { return strings.Contains(w, prefix) })
			c.notices = append(c.notices, fmt.Sprintf("datastores[%d] (%s %q) has enabled: false and is not used", i, ds.Type, ds.ID))
			continue
		}
		kept = append(kept, ds)
	}
	c.Datastores = kept
}

// Warnings lists the keys that were accepted but are not implemented.
func (c *Config) Warnings() []string { return c.warnings }

// Notices list what of the file is left out as it asks (a disabled
// datastore), for an info line each.
func (c *Config) Notices() []string { return c.notices }

// keyWalker compares a YAML tree with the Config struct, key by key, so that a
// misspelled key is reported with its full path and a suggestion: yaml.v3's
// KnownFields only says "field x not found in type config.Repo".
type keyWalker struct {
	file     string
	errs     []error
	warnings []string
}

func (w *keyWalker) walk(n *yaml.Node, t reflect.Type, path, pattern string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			childPath, childPattern := join(path, key.Value), join(pattern, key.Value)
			if f, ok := fields[key.Value]; ok {
				w.walk(val, f.Type, childPath, childPattern)
				continue
			}
			if mmrOnly[childPattern] {
				w.warnings = append(w.warnings, fmt.Sprintf("%s:%d: %s: matrix-media-repo option not implemented by mediarepo yet; ignored", w.file, key.Line, childPath))
				continue
			}
			msg := fmt.Sprintf("%s:%d: %s: unknown key", w.file, key.Line, childPath)
			if s := suggest(key.Value, fields); s != "" {
				msg += ", did you mean " + s + "?"
			}
			w.errs = append(w.errs, errors.New(msg))
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), pattern+"[]")
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			w.walk(n.Content[i+1], t.Elem(), join(path, k), join(pattern, k))
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = f
	}
	return fields
}

// suggest returns the known key closest to key, if it is close enough to be a typo.
func suggest(key string, fields map[string]reflect.StructField) string {
	best, bestDist := "", len(key)/3+2
	for name := range fields {
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if d < bestDist || (d == bestDist && best != "" && name < best) {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
