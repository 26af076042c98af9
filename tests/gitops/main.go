// Command usersync-gitops reads one Kubernetes object the way GitOps tools read it, so that tests can
// check what Flux and Argo CD would say about a UserSynchronization without running either:
//
//	usersync-gitops kstatus [FILE]                      kstatus (Flux's wait and healthChecks)
//	usersync-gitops argo-health -script LUA [FILE]      an Argo CD health check
//	usersync-gitops argo-action -script LUA [FILE]      an Argo CD action: the object it patches to
//	usersync-gitops argo-discovery -script LUA [FILE]   an Argo CD action discovery script
//	usersync-gitops argo-test DIR                       DIR's health_test.yaml and actions/action_test.yaml
//
// FILE is JSON or YAML; without it (or with "-") the object is read from standard input. Results are
// printed as JSON. Every command handles one object or one directory of files and exits.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

const usage = `usage: usersync-gitops kstatus [FILE]
       usersync-gitops argo-health|argo-action|argo-discovery -script LUA [-open-libs] [FILE]
       usersync-gitops argo-test [-open-libs] DIR`

func main() {
	if len(os.Args) < 2 {
		fail(errors.New(usage))
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "kstatus":
		err = kstatusCommand(args)
	case "argo-health", "argo-action", "argo-discovery":
		err = scriptCommand(os.Args[1], args)
	case "argo-test":
		err = testCommand(args)
	default:
		err = errors.New(usage)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "usersync-gitops:", err)
	os.Exit(1)
}

// kstatusCommand prints status.Compute's verdict, as Flux's health checks compute it.
func kstatusCommand(args []string) error {
	flags := flag.NewFlagSet("kstatus", flag.ContinueOnError)
	if err := flags.Parse(args); err != nil {
		return err
	}
	obj, err := readObject(flags.Arg(0))
	if err != nil {
		return err
	}
	result, err := status.Compute(obj)
	if err != nil {
		return fmt.Errorf("kstatus: %w", err)
	}
	return printJSON(healthStatus{Status: result.Status.String(), Message: result.Message})
}

// scriptCommand runs one Argo CD Lua script on one object.
func scriptCommand(name string, args []string) error {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	script := flags.String("script", "", "the Lua script")
	openLibs := flags.Bool("open-libs", false,
		"open Lua's standard libraries, as resource.customizations.useOpenLibs does")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *script == "" {
		return errors.New(name + ": -script is required")
	}
	code, err := os.ReadFile(*script)
	if err != nil {
		return err
	}
	obj, err := readObject(flags.Arg(0))
	if err != nil {
		return err
	}
	vm := vm{openLibs: *openLibs}
	var result any
	switch name {
	case "argo-health":
		result, err = vm.health(obj, string(code))
	case "argo-action":
		result, err = vm.action(obj, string(code))
	default:
		result, err = vm.discovery(obj, string(code))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *script, err)
	}
	return printJSON(result)
}

// testCommand runs a customization directory's tests, as Argo CD's own test does for its built-ins.
func testCommand(args []string) error {
	flags := flag.NewFlagSet("argo-test", flag.ContinueOnError)
	openLibs := flags.Bool("open-libs", false, "open Lua's standard libraries")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return errors.New(usage)
	}
	return runTests(flags.Arg(0), vm{openLibs: *openLibs}, os.Stdout)
}

// readObject reads a JSON or YAML object from path, or from standard input for "" and "-". It is
// decoded as the apiserver's clients decode it: integers stay integers.
func readObject(path string) (*unstructured.Unstructured, error) {
	var data []byte
	var err error
	if path == "" || path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	return decodeObject(data)
}

func decodeObject(data []byte) (*unstructured.Unstructured, error) {
	text, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(text); err != nil {
		return nil, err
	}
	return obj, nil
}

func printJSON(value any) error {
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	return out.Encode(value)
}
