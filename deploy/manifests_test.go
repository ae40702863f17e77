// Package deploy checks the Kubernetes manifests in kubernetes/: each
// document decodes strictly (an unknown or misspelled field fails) into the
// Kubernetes API type of its kind, or, for Traefik's CRDs, into their
// fields as Traefik documents them; and the pieces fit together. It is a
// module of its own, so the Kubernetes API types stay out of mediarepo's.
package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// Traefik's CRDs (traefik.io/v1alpha1), the fields the manifests use.
type middleware struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
	Spec       struct {
		Headers struct {
			CustomRequestHeaders map[string]string `json:"customRequestHeaders"`
		} `json:"headers"`
	} `json:"spec"`
}

type ingressRoute struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
	Spec       struct {
		EntryPoints []string `json:"entryPoints"`
		Routes      []struct {
			Match       string `json:"match"`
			Kind        string `json:"kind"`
			Priority    int    `json:"priority"`
			Middlewares []struct {
				Name string `json:"name"`
			} `json:"middlewares"`
			Services []struct {
				Name string `json:"name"`
				Port int32  `json:"port"`
			} `json:"services"`
		} `json:"routes"`
		TLS struct {
			SecretName string `json:"secretName"`
		} `json:"tls"`
	} `json:"spec"`
}

type metadata struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// manifests decodes every document of every file in kubernetes/.
type manifests struct {
	deployments   []appsv1.Deployment
	services      []corev1.Service
	configMaps    []corev1.ConfigMap
	secrets       []corev1.Secret
	pdbs          []policyv1.PodDisruptionBudget
	middlewares   []middleware
	ingressRoutes []ingressRoute
	files         []string
}

func load(t *testing.T) *manifests {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(path) == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, filepath.Base(path))
		for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", path, i, err)
			}
			var target any
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				m.deployments = append(m.deployments, appsv1.Deployment{})
				target = &m.deployments[len(m.deployments)-1]
			case "v1 Service":
				m.services = append(m.services, corev1.Service{})
				target = &m.services[len(m.services)-1]
			case "v1 ConfigMap":
				m.configMaps = append(m.configMaps, corev1.ConfigMap{})
				target = &m.configMaps[len(m.configMaps)-1]
			case "v1 Secret":
				m.secrets = append(m.secrets, corev1.Secret{})
				target = &m.secrets[len(m.secrets)-1]
			case "policy/v1 PodDisruptionBudget":
				m.pdbs = append(m.pdbs, policyv1.PodDisruptionBudget{})
				target = &m.pdbs[len(m.pdbs)-1]
			case "traefik.io/v1alpha1 Middleware":
				m.middlewares = append(m.middlewares, middleware{})
				target = &m.middlewares[len(m.middlewares)-1]
			case "traefik.io/v1alpha1 IngressRoute":
				m.ingressRoutes = append(m.ingressRoutes, ingressRoute{})
				target = &m.ingressRoutes[len(m.ingressRoutes)-1]
			default:
				t.Fatalf("%s document %d: unexpected %s %s", path, i, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Errorf("%s document %d (%s): %v", path, i, head.Kind, err)
			}
		}
	}
	return m
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.configMaps) != 1 || len(m.secrets) != 1 ||
		len(m.pdbs) != 1 || len(m.middlewares) != 1 || len(m.ingressRoutes) != 1 {
		t.Fatalf("want one of each kind, got %d deployments, %d services, %d config maps, %d secrets, %d PDBs, %d middlewares, %d ingress routes",
			len(m.deployments), len(m.services), len(m.configMaps), len(m.secrets), len(m.pdbs), len(m.middlewares), len(m.ingressRoutes))
	}
	raw, err := os.ReadFile(filepath.Join("kubernetes", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.files {
		if !slices.Contains(k.Resources, f) {
			t.Errorf("kustomization.yaml leaves out %s", f)
		}
	}
}

func TestManifestsFitTogether(t *testing.T) {
	m := load(t)
	d, svc, cm, sec, pdb := m.deployments[0], m.services[0], m.configMaps[0], m.secrets[0], m.pdbs[0]
	labels := d.Spec.Template.Labels
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v, want several", d.Spec.Replicas)
	}
	for what, sel := range map[string]map[string]string{"deployment": d.Spec.Selector.MatchLabels, "service": svc.Spec.Selector, "pdb": pdb.Spec.Selector.MatchLabels} {
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selects %s=%s, which the pods do not have", what, k, v)
			}
		}
	}
	c := d.Spec.Template.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		if _, ok := ports[probe.HTTPGet.Port.String()]; !ok {
			t.Errorf("%s probe on port %s, not a container port", name, probe.HTTPGet.Port.String())
		}
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %s and %s, want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	// Every ${NAME} in the config comes from the Secret the pods take their environment from.
	conf := cm.Data["media-repo.yaml"]
	if conf == "" {
		t.Fatal("the ConfigMap has no media-repo.yaml")
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != sec.Name {
		t.Errorf("envFrom = %+v, want the Secret %s", c.EnvFrom, sec.Name)
	}
	for _, part := range strings.Split(conf, "${")[1:] {
		name, _, _ := strings.Cut(part, "}")
		if _, ok := sec.StringData[name]; !ok {
			t.Errorf("the config names ${%s}, which the Secret does not have", name)
		}
	}
	if !strings.Contains(conf, "useForwardedHost: true") {
		t.Error("the config does not trust the Middleware's X-Forwarded-Host")
	}
	// The route to mediarepo goes through the Middleware to the Service's port.
	mw := m.middlewares[0]
	if mw.Spec.Headers.CustomRequestHeaders["X-Forwarded-Host"] == "" {
		t.Error("the Middleware does not set X-Forwarded-Host")
	}
	found := false
	for _, r := range m.ingressRoutes[0].Spec.Routes {
		for _, s := range r.Services {
			if s.Name != svc.Name {
				continue
			}
			found = true
			if s.Port != svc.Spec.Ports[0].Port {
				t.Errorf("the route sends to port %d, the Service listens on %d", s.Port, svc.Spec.Ports[0].Port)
			}
			if len(r.Middlewares) != 1 || r.Middlewares[0].Name != mw.Metadata.Name {
				t.Errorf("the route to mediarepo does not use the Middleware %s", mw.Metadata.Name)
			}
		}
	}
	if !found {
		t.Error("no route goes to the mediarepo Service")
	}
}
