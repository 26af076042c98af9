package main

// Runs a resource customization directory's tests in the formats of Argo CD's own tests:
// health_test.yaml (tests: inputPath, healthStatus) next to health.lua, and actions/action_test.yaml
// (discoveryTests: inputPath, result; actionTests: action, inputPath, expectedOutputPath or
// expectedErrorMessage). Paths are relative to the file that names them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"sigs.k8s.io/yaml"
)

type healthTests struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus healthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []resourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action               string `json:"action"`
		InputPath            string `json:"inputPath"`
		ExpectedOutputPath   string `json:"expectedOutputPath"`
		ExpectedErrorMessage string `json:"expectedErrorMessage"`
	} `json:"actionTests"`
}

// Annotations an action sets to a fresh value (a time): the test checks that the value is new and
// then compares the rest, as Argo CD's test normalizes restartedAt.
var freshAnnotations = []string{"usersync.io/run-now", "usersync.io/approve-deletions"}

// tally counts and reports test results.
type tally struct {
	out      io.Writer
	run, bad int
}

func (t *tally) check(name string, err error) {
	t.run++
	if err != nil {
		t.bad++
		fmt.Fprintf(t.out, "FAIL %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(t.out, "ok   %s\n", name)
}

func runTests(dir string, v vm, out io.Writer) error {
	t := &tally{out: out}
	if err := runHealthTests(dir, v, t); err != nil {
		return err
	}
	if err := runActionTests(filepath.Join(dir, "actions"), v, t); err != nil {
		return err
	}
	if t.run == 0 {
		return fmt.Errorf("%s: no tests found", dir)
	}
	fmt.Fprintf(out, "argo-test: %d tests, %d mismatches\n", t.run, t.bad)
	if t.bad > 0 {
		return fmt.Errorf("%d of %d tests in %s did not match", t.bad, t.run, dir)
	}
	return nil
}

func runHealthTests(dir string, v vm, t *tally) error {
	var tests healthTests
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &tests); err != nil {
		return err
	}
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return err
	}
	for _, test := range tests.Tests {
		t.check("health "+test.InputPath, func() error {
			obj, err := readObject(filepath.Join(dir, test.InputPath))
			if err != nil {
				return err
			}
			got, err := v.health(obj, string(script))
			if err != nil {
				return err
			}
			return same(test.HealthStatus, got)
		}())
	}
	return nil
}

func runActionTests(dir string, v vm, t *tally) error {
	path := filepath.Join(dir, "action_test.yaml")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var tests actionTests
	if err := readYAML(path, &tests); err != nil {
		return err
	}
	discovery, err := os.ReadFile(filepath.Join(dir, "discovery.lua"))
	if err != nil {
		return err
	}
	for _, test := range tests.DiscoveryTests {
		t.check("discovery "+test.InputPath, func() error {
			obj, err := readObject(filepath.Join(dir, test.InputPath))
			if err != nil {
				return err
			}
			got, err := v.discovery(obj, string(discovery))
			if err != nil {
				return err
			}
			return same(test.Result, got)
		}())
	}
	for _, test := range tests.ActionTests {
		t.check("action "+test.Action+" "+test.InputPath, func() error {
			return actionTest(dir, v, test.Action, test.InputPath, test.ExpectedOutputPath,
				test.ExpectedErrorMessage)
		}())
	}
	return nil
}

func actionTest(dir string, v vm, action, input, expectedPath, expectedError string) error {
	script, err := os.ReadFile(filepath.Join(dir, action, "action.lua"))
	if err != nil {
		return err
	}
	obj, err := readObject(filepath.Join(dir, input))
	if err != nil {
		return err
	}
	got, err := v.action(obj, string(script))
	if expectedError != "" {
		if err == nil || err.Error() != expectedError {
			return fmt.Errorf("expected the error %q, got %v", expectedError, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	want, err := readObject(filepath.Join(dir, expectedPath))
	if err != nil {
		return err
	}
	if err := takeFreshValues(got, roundTrip(obj.Object), want.Object); err != nil {
		return err
	}
	return same(roundTrip(want.Object), got)
}

// takeFreshValues checks that each fresh annotation the expected object has was set to a new,
// non-empty value, then copies the expected value so that the rest can be compared.
func takeFreshValues(got, input, want map[string]any) error {
	wanted := annotations(want)
	before := annotations(input)
	after := annotations(got)
	for _, key := range freshAnnotations {
		if _, ok := wanted[key]; !ok {
			continue
		}
		value, _ := after[key].(string)
		if value == "" || value == before[key] {
			return fmt.Errorf("annotation %s is %q, not a new value (it was %q)", key, value, before[key])
		}
		after[key] = wanted[key]
	}
	return nil
}

func annotations(obj map[string]any) map[string]any {
	meta, _ := obj["metadata"].(map[string]any)
	found, _ := meta["annotations"].(map[string]any)
	if found == nil {
		return map[string]any{}
	}
	return found
}

// same compares as JSON, so that number types and empty lists do not matter.
func same(want, got any) error {
	a, err := json.Marshal(want)
	if err != nil {
		return err
	}
	b, err := json.Marshal(got)
	if err != nil {
		return err
	}
	var left, right any
	if err := json.Unmarshal(a, &left); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &right); err != nil {
		return err
	}
	if !reflect.DeepEqual(left, right) {
		return fmt.Errorf("\n  expected %s\n  got      %s", a, b)
	}
	return nil
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
