// Package mediarepo holds what belongs to the repository as a whole: the
// documented sample config, embedded so the binary can write it out.
package mediarepo

import _ "embed"

// SampleConfig is config.sample.yaml: every key with its comment and default.
//
//go:embed config.sample.yaml
var SampleConfig []byte
