package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mediarepo/mediarepo/federation"
)

// keysUsage explains the keys command.
const keysUsage = `usage:
  media-repo keys generate [-version V] [-out FILE]   write a new signing key (Synapse format)
  media-repo keys export -key FILE [-format synapse|dendrite|mmr]
                                                      print the key for the homeserver (or for
                                                      matrix-media-repo) to load
  media-repo keys import -in FILE -out FILE           convert a Synapse, Dendrite or
                                                      matrix-media-repo key file into the file
                                                      signingKeyPath names
`

// runKeys is "media-repo keys ...": managing the signing key mediarepo signs
// federation requests with, as its homeserver.
func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	fs := flag.NewFlagSet("media-repo keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "mediarepo", "key version, the part after ed25519:")
	out := fs.String("out", "", "file to write (default: standard output)")
	in := fs.String("in", "", "key file to read")
	keyFile := fs.String("key", "", "key file to read")
	format := fs.String("format", "synapse", "synapse, dendrite or mmr")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var data []byte
	switch args[0] {
	case "generate":
		k, err := federation.GenerateSigningKey(*version)
		if err != nil {
			fmt.Fprintln(stderr, "media-repo keys:", err)
			return 1
		}
		data = []byte(k.String())
	case "export", "import":
		path := *keyFile
		if args[0] == "import" {
			path = *in
		}
		k, err := federation.LoadSigningKey(path)
		if err != nil {
			fmt.Fprintln(stderr, "media-repo keys:", err)
			return 1
		}
		switch {
		case args[0] == "import" || *format == "synapse":
			data = []byte(k.String())
		case *format == "dendrite":
			data = k.DendritePEM()
		case *format == "mmr":
			data = k.MMRPEM()
		default:
			fmt.Fprintf(stderr, "media-repo keys: -format %q: want synapse, dendrite or mmr\n", *format)
			return 2
		}
		if args[0] == "export" {
			fmt.Fprintf(stderr, "public key %s %s\n", k.ID, k.PublicKey())
		}
	default:
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	if *out == "" {
		stdout.Write(data)
		return 0
	}
	if err := os.WriteFile(*out, data, 0o600); err != nil {
		fmt.Fprintln(stderr, "media-repo keys:", err)
		return 1
	}
	return 0
}
