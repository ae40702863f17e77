package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mediarepo/mediarepo/config"
)

// TestDeployConfigMapIsAValidConfig: the config the Kubernetes manifests
// ship (deploy/kubernetes/configmap.yaml) loads, with the Secret's
// variables set.
func TestDeployConfigMapIsAValidConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"MEDIAREPO_DB_DSN", "MEDIAREPO_S3_ACCESS_KEY", "MEDIAREPO_S3_SECRET_KEY"} {
		t.Setenv(v, "postgres://mediarepo@db/mediarepo")
	}
	cfg, err := config.Parse("configmap.yaml", []byte(cm.Data["media-repo.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if !cfg.Repo.UseForwardedHost || cfg.Datastores[0].Type != "s3" || !cfg.Redis.Enabled {
		t.Errorf("config = %+v", cfg.Repo)
	}
}

// TestDeployComposeConfigIsValid: the compose set-up's config loads.
func TestDeployComposeConfigIsValid(t *testing.T) {
	for _, v := range []string{"MEDIAREPO_DB_DSN", "MEDIAREPO_S3_SECRET_KEY"} {
		t.Setenv(v, "x")
	}
	t.Setenv("HOMESERVER_URL", "http://synapse:8008")
	cfg, err := config.Load(filepath.Join("..", "deploy", "compose", "media-repo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) != 0 || cfg.Datastores[0].Opts.Endpoint != "seaweedfs:8333" {
		t.Errorf("warnings %v, datastore %+v", w, cfg.Datastores[0].Opts)
	}
}
