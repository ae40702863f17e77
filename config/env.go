package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// envRef is ${NAME} in a config value; $${ is a literal ${.
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} in every scalar value of the document under
// node with the environment variable NAME, so that secrets (a database
// password, S3 keys) can come from a Kubernetes Secret or a compose file's
// environment while the file itself is not secret. A variable that is not
// set is an error naming it and where it is used; keys are never expanded.
func expandEnv(file string, node *yaml.Node, lookup func(string) (string, bool)) []error {
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${") {
				return
			}
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				if ref == "$${" {
					return "${"
				}
				name := ref[2 : len(ref)-1]
				v, ok := lookup(name)
				if !ok {
					errs = append(errs, fmt.Errorf("%s:%d: environment variable %s is not set", file, n.Line, name))
				}
				return v
			})
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		default:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(node)
	return errs
}

// lookupEnv is the process environment.
func lookupEnv(name string) (string, bool) { return os.LookupEnv(name) }
