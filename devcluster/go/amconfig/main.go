// Command amconfig writes the alertmanager.yaml that the Prometheus Operator would generate
// for an Alertmanager selecting the AlertmanagerConfig objects of some namespaces: it reads
// those objects and the Secrets they reference from a real API server and runs them through
// the operator's own conversion (pkg/alertmanager.ConfigBuilder, the code behind the
// alertmanager-<name>-generated Secret), on top of a base configuration.
//
//	amconfig -kubeconfig K -namespaces ns1,ns2 [-selector k=v] -base base.yaml \
//	         -alertmanager-version 0.25.0 -out alertmanager.yaml
//
// As the operator does, an object that fails validation is skipped with a warning (stderr
// line "rejected <ns>/<name>: <why>"); the exit status is non-zero only when the whole
// configuration cannot be built.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/prometheus-operator/prometheus-operator/pkg/alertmanager"
	"github.com/prometheus-operator/prometheus-operator/pkg/alertmanager/validation/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	"github.com/prometheus-operator/prometheus-operator/pkg/assets"
	monitoringclient "github.com/prometheus-operator/prometheus-operator/pkg/client/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "amconfig:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
	namespaces := flag.String("namespaces", "", "comma-separated namespaces to select AlertmanagerConfigs from")
	selector := flag.String("selector", "", "label selector of the AlertmanagerConfigs (alertmanagerConfigSelector)")
	base := flag.String("base", "", "base alertmanager.yaml (the Alertmanager's own config Secret)")
	version := flag.String("alertmanager-version", "0.25.0", "version of the Alertmanager the config is for")
	amNamespace := flag.String("alertmanager-namespace", "monitoring", "namespace of the Alertmanager object")
	out := flag.String("out", "", "where to write the generated alertmanager.yaml (default stdout)")
	flag.Parse()
	if *namespaces == "" || *base == "" {
		return fmt.Errorf("-namespaces and -base are required")
	}

	ctx := context.Background()
	restConfig, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	kclient, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	mclient, err := monitoringclient.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	amVersion, err := semver.ParseTolerant(*version)
	if err != nil {
		return fmt.Errorf("-alertmanager-version: %w", err)
	}
	baseConfig, err := os.ReadFile(*base)
	if err != nil {
		return err
	}

	// The operator's default matcher strategy (OnNamespace): each object's top route gets a
	// namespace="<its namespace>" matcher.
	am := &monitoringv1.Alertmanager{ObjectMeta: metav1.ObjectMeta{Name: "main", Namespace: *amNamespace}}
	store := assets.NewStoreBuilder(kclient.CoreV1(), kclient.CoreV1())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	builder := alertmanager.NewConfigBuilder(logger, amVersion, store, am)
	if err := builder.InitializeFromRawConfiguration(baseConfig); err != nil {
		return fmt.Errorf("base config: %w", err)
	}

	selected := map[string]*monitoringv1alpha1.AlertmanagerConfig{}
	for _, ns := range strings.Split(*namespaces, ",") {
		list, err := mclient.MonitoringV1alpha1().AlertmanagerConfigs(ns).List(ctx, metav1.ListOptions{LabelSelector: *selector})
		if err != nil {
			return fmt.Errorf("listing AlertmanagerConfigs in %s: %w", ns, err)
		}
		for i := range list.Items {
			amc := &list.Items[i]
			key := amc.Namespace + "/" + amc.Name
			if err := v1alpha1.ValidateAlertmanagerConfig(amc); err != nil {
				fmt.Fprintf(os.Stderr, "rejected %s: %v\n", key, err)
				continue
			}
			selected[key] = amc
		}
	}
	if err := builder.AddAlertmanagerConfigs(ctx, selected); err != nil {
		return err
	}
	generated, err := builder.MarshalJSON() // YAML, despite the name
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(generated)
		return err
	}
	return os.WriteFile(*out, generated, 0o600)
}
