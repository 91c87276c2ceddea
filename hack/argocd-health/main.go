// Command argocd-health runs Argo CD resource health checks and their health_test.yaml cases
// under Argo CD's own Lua engine, the way an Argo CD application controller runs them.
//
//	argocd-health [-argocd-cm FILE] DIR
//
// DIR holds one folder per checked kind, <group>/<Kind>/, each with a health.lua, a
// health_test.yaml (Argo CD's layout for resource customizations: a list of inputPath plus the
// expected healthStatus) and the objects it names. The scripts reach Argo CD as an argocd-cm
// ConfigMap: by default one made from DIR (key resource.customizations.health.<group>_<Kind> =
// the health.lua), with -argocd-cm the ConfigMap in FILE as it is. Argo CD's settings manager
// reads it into resource overrides (so useOpenLibs is off unless the ConfigMap turns it on), and
// every case's object goes through gitops-engine's health.GetResourceHealth with
// lua.ResourceHealthOverrides, the controller's own path.
//
// It prints one JSON report on stdout (engine versions, every case with what was expected and
// what Argo CD said) and exits 0 when every case passes, 1 when a case fails, 2 on bad input.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// testFile is a health_test.yaml, decoded the way Argo CD's own util/lua tests decode it.
type testFile struct {
	Tests []struct {
		InputPath    string              `json:"inputPath"`
		HealthStatus health.HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type result struct {
	Check     string               `json:"check"` // <group>/<Kind>, the resource override key
	InputPath string               `json:"inputPath"`
	Expected  health.HealthStatus  `json:"expected"`
	Actual    *health.HealthStatus `json:"actual"`
	Error     string               `json:"error,omitempty"`
	Passed    bool                 `json:"passed"`
}

type report struct {
	Engine map[string]string `json:"engine"`
	Source string            `json:"source"` // where the scripts came from
	Cases  []result          `json:"cases"`
	Passed int               `json:"passed"`
	Failed int               `json:"failed"`
}

func main() {
	cmFile := flag.String("argocd-cm", "", "an argocd-cm ConfigMap (YAML) to take the scripts from")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: argocd-health [-argocd-cm FILE] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetLevel(log.WarnLevel) // the settings manager logs at info level; stdout is the report
	rep, err := run(flag.Arg(0), *cmFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(2)
	}
	for _, c := range rep.Cases {
		if !c.Passed {
			fmt.Fprintf(os.Stderr, "FAIL %s %s: %s\n", c.Check, c.InputPath, describe(c))
		}
	}
	fmt.Fprintf(os.Stderr, "argocd-health: %d passed, %d failed (Argo CD %s)\n",
		rep.Passed, rep.Failed, rep.Engine["github.com/argoproj/argo-cd/v3"])
	if rep.Failed > 0 {
		os.Exit(1)
	}
}

func describe(c result) string {
	if c.Error != "" {
		return c.Error
	}
	got := "no health status"
	if c.Actual != nil {
		got = fmt.Sprintf("%s %q", c.Actual.Status, c.Actual.Message)
	}
	return fmt.Sprintf("expected %s %q, Argo CD says %s", c.Expected.Status, c.Expected.Message, got)
}

func run(dir, cmFile string) (*report, error) {
	checks, err := findChecks(dir)
	if err != nil {
		return nil, err
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("%s: no <group>/<Kind>/health_test.yaml found", dir)
	}
	rep := &report{Engine: engine(), Source: cmFile}
	var cm *corev1.ConfigMap
	if cmFile != "" {
		cm, err = readConfigMap(cmFile)
	} else {
		rep.Source = "the health.lua files in " + dir
		cm, err = configMapFrom(dir, checks)
	}
	if err != nil {
		return nil, err
	}
	healthOverrides, err := resourceOverrides(cm)
	if err != nil {
		return nil, fmt.Errorf("argocd-cm: %w", err)
	}
	for _, check := range checks {
		folder := filepath.Join(dir, filepath.FromSlash(check))
		raw, err := os.ReadFile(filepath.Join(folder, "health_test.yaml"))
		if err != nil {
			return nil, err
		}
		var tests testFile
		if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
			return nil, fmt.Errorf("%s/health_test.yaml: %w", check, err)
		}
		if len(tests.Tests) == 0 {
			return nil, fmt.Errorf("%s/health_test.yaml: no tests", check)
		}
		for _, t := range tests.Tests {
			r := result{Check: check, InputPath: t.InputPath, Expected: t.HealthStatus}
			r.Actual, err = evaluate(healthOverrides, check, filepath.Join(folder, t.InputPath))
			if err != nil {
				r.Error = err.Error()
			}
			r.Passed = err == nil && r.Actual != nil && *r.Actual == t.HealthStatus
			if r.Passed {
				rep.Passed++
			} else {
				rep.Failed++
			}
			rep.Cases = append(rep.Cases, r)
		}
	}
	return rep, nil
}

// findChecks lists <group>/<Kind> for every health_test.yaml two levels under dir, sorted.
func findChecks(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*", "*", "health_test.yaml"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	var checks []string
	for _, m := range matches {
		rel, err := filepath.Rel(dir, filepath.Dir(m))
		if err != nil {
			return nil, err
		}
		checks = append(checks, filepath.ToSlash(rel))
	}
	sort.Strings(checks)
	return checks, nil
}

// configMapFrom makes the argocd-cm that hack/argocd_cm.py writes: one health key per script.
func configMapFrom(dir string, checks []string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      common.ArgoCDConfigMapName,
			Namespace: "argocd",
			Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
		},
		Data: map[string]string{},
	}
	for _, check := range checks {
		script, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(check), "health.lua"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // its cases then fail: Argo CD has no check for the kind
		}
		if err != nil {
			return nil, err
		}
		group, kind, _ := strings.Cut(check, "/")
		cm.Data["resource.customizations.health."+group+"_"+kind] = string(script)
	}
	return cm, nil
}

func readConfigMap(path string) (*corev1.ConfigMap, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(raw, cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Kind != "ConfigMap" || cm.Name != common.ArgoCDConfigMapName {
		return nil, fmt.Errorf("%s: not the %s ConfigMap", path, common.ArgoCDConfigMapName)
	}
	if cm.Namespace == "" {
		cm.Namespace = "argocd"
	}
	return cm, nil
}

// resourceOverrides reads argocd-cm with Argo CD's settings manager, as the controller does.
func resourceOverrides(cm *corev1.ConfigMap) (lua.ResourceHealthOverrides, error) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name:      common.ArgoCDSecretName,
		Namespace: cm.Namespace,
		Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr := settings.NewSettingsManager(ctx, fake.NewClientset(cm, secret), cm.Namespace)
	overrides, err := mgr.GetResourceOverrides()
	if err != nil {
		return nil, err
	}
	return lua.ResourceHealthOverrides(overrides), nil
}

// evaluate is what the application controller does for one live object.
func evaluate(overrides lua.ResourceHealthOverrides, check, path string) (*health.HealthStatus, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(doc); err != nil { // as a watch decodes it: integers stay int64
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if got := lua.GetConfigMapKey(obj.GroupVersionKind()); got != check {
		return nil, fmt.Errorf("%s is a %s, not a %s", path, got, check)
	}
	if overrides[check].HealthLua == "" {
		return nil, fmt.Errorf("argocd-cm has no resource.customizations.health for %s", check)
	}
	status, err := health.GetResourceHealth(obj, overrides)
	if err != nil {
		return status, err
	}
	if status == nil {
		return nil, errors.New("Argo CD gave no health status")
	}
	return status, nil
}

// engine names the Argo CD, gitops-engine and gopher-lua modules this binary was built from.
func engine() map[string]string {
	out := map[string]string{"go": runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, dep := range info.Deps {
		switch dep.Path {
		case "github.com/argoproj/argo-cd/v3", "github.com/argoproj/argo-cd/gitops-engine/v3",
			"github.com/yuin/gopher-lua":
			out[dep.Path] = dep.Version
		}
	}
	return out
}
