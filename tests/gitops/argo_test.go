package main

// The Lua environment is Argo CD's: these pin the parts a customization can trip over
// (`go test ./...` in tests/gitops).

import (
	"strings"
	"testing"
	"time"
)

func healthOf(t *testing.T, v vm, script string) (healthStatus, error) {
	t.Helper()
	obj, err := decodeObject([]byte(`{"apiVersion":"usersync.io/v1alpha1","kind":"UserSynchronization",
		"metadata":{"name":"corp","generation":3},"spec":{"suspend":false}}`))
	if err != nil {
		t.Fatal(err)
	}
	return v.health(obj, script)
}

func TestArgoCDScriptsHaveNoStringLibrary(t *testing.T) {
	script := `return {status = "Healthy", message = string.format("%d", 1)}`
	if _, err := healthOf(t, vm{}, script); err == nil {
		t.Fatal("string.format worked without the open libraries")
	}
	got, err := healthOf(t, vm{openLibs: true}, script)
	if err != nil || got.Message != "1" {
		t.Fatalf("with open libraries: %v %v", got, err)
	}
}

func TestOsOnlyThroughRequire(t *testing.T) {
	if got, _ := healthOf(t, vm{}, `if os == nil then return {status = "Healthy"} end`); got.Status != "Healthy" {
		t.Fatalf("a global os exists: %v", got)
	}
	got, err := healthOf(t, vm{}, `local os = require("os"); return {status = "Healthy", message = os.date("!%Y")}`)
	if err != nil || got.Message != time.Now().UTC().Format("2006") {
		t.Fatalf("require(\"os\").date: %v %v", got, err)
	}
}

func TestObjectNumbersAndInvalidStatus(t *testing.T) {
	got, err := healthOf(t, vm{}, `return {status = "Progressing", message = "generation " .. obj.metadata.generation}`)
	if err != nil || got.Message != "generation 3" {
		t.Fatalf("integers print as integers: %v %v", got, err)
	}
	if got, _ := healthOf(t, vm{}, `return {status = "Fine"}`); got.Status != "Unknown" {
		t.Fatalf("an invalid status is not Unknown: %v", got)
	}
	if got, _ := healthOf(t, vm{}, `return {}`); got != (healthStatus{}) {
		t.Fatalf("an empty table is not an empty verdict: %v", got)
	}
}

func TestScriptsStopAfterOneSecond(t *testing.T) {
	_, err := healthOf(t, vm{}, `while true do end`)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("an endless script: %v", err)
	}
}

func TestStrftime(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 5, 7, 0, time.UTC)
	if got := strftime(at, "%Y-%m-%dT%XZ %% %q"); got != "2026-03-02T09:05:07Z % %q" {
		t.Fatalf("strftime: %q", got)
	}
}
