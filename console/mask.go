package console

import (
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mediarepo/mediarepo/config"
)

// secretWords mark the keys whose values are never shown.
var secretWords = []string{"secret", "password", "token", "key", "dsn"}

const masked = "********"

// maskedConfig is cfg as YAML with every secret replaced: values of keys
// naming a secret, and the password of any URL.
func maskedConfig(cfg *config.Config) (string, error) {
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	mask(&doc, false)
	out, err := yaml.Marshal(&doc)
	return string(out), err
}

// mask replaces, below n, the scalars under secret keys (secret is whether
// n itself is under one) and the passwords in URLs.
func mask(n *yaml.Node, secret bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			mask(c, secret)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			mask(n.Content[i+1], secret || isSecretKey(n.Content[i].Value))
		}
	case yaml.ScalarNode:
		switch {
		case secret && n.Value != "" && n.Tag != "!!bool":
			n.Value, n.Tag, n.Style = masked, "!!str", 0
		case strings.Contains(n.Value, "://"):
			if u, err := url.Parse(n.Value); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
					n.Value = strings.Replace(u.String(), "xxxxx", masked, 1)
				}
			}
		case strings.Contains(n.Value, "password="):
			n.Value = masked // a libpq key=value DSN
		}
	}
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}
