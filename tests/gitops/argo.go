package main

// Runs Lua scripts the way Argo CD's util/lua runs resource customizations: a gopher-lua state with
// only the package, base and table libraries and Argo CD's "safe" os module (time and date), the
// object as the global table obj, an empty actionParams table, a one-second limit, and the last
// value the script returns turned into JSON by gopher-json. Scripts from argocd-cm run without Lua's
// standard libraries unless resource.customizations.useOpenLibs.<group_kind> is "true"; openLibs is
// that setting.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

// The health codes Argo CD accepts from a script; anything else becomes Unknown.
var healthCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true,
	"Healthy": true, "Degraded": true, "Missing": true,
}

type healthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// resourceAction is what Argo CD makes of one entry of a discovery script's table.
type resourceAction struct {
	Name        string                `json:"name,omitempty"`
	Params      []resourceActionParam `json:"params,omitempty"`
	Disabled    bool                  `json:"disabled,omitempty"`
	IconClass   string                `json:"iconClass,omitempty"`
	DisplayName string                `json:"displayName,omitempty"`
}

type resourceActionParam struct {
	Name string `json:"name,omitempty"`
}

type vm struct {
	openLibs bool
}

// run executes script with obj and returns the state, whose top value is what the script returned.
// The caller closes the state.
func (v vm) run(obj *unstructured.Unstructured, script string) (*lua.LState, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !v.openLibs})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true},
			lua.LString(lib.name)); err != nil {
			l.Close()
			return nil, err
		}
	}
	// require("os") gives the safe module: actions start with `local os = require("os")`.
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj.Object))
	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
		// Argo CD shows users the error without Lua's stack trace.
		apiErr.StackTrace = ""
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// health is ExecuteHealthLua: the script's table as {status, message}.
func (v vm) health(obj *unstructured.Unstructured, script string) (healthStatus, error) {
	l, err := v.run(obj, script)
	if err != nil {
		return healthStatus{}, err
	}
	defer l.Close()
	value := l.Get(-1)
	switch value.Type() {
	case lua.LTNil:
		return healthStatus{}, nil
	case lua.LTTable:
	default:
		return healthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", value.Type())
	}
	text, err := luajson.Encode(value)
	if err != nil {
		return healthStatus{}, err
	}
	var result healthStatus
	if err := json.Unmarshal(text, &result); err != nil {
		// An empty table encodes as [], which Argo CD reads as no verdict.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return healthStatus{}, nil
		}
		return healthStatus{}, err
	}
	if !healthCodes[result.Status] {
		return healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return result, nil
}

// tableJSON runs a script that must return a table, as Argo CD's action code requires, and encodes
// that table as Argo CD does.
func (v vm) tableJSON(obj *unstructured.Unstructured, script string) ([]byte, error) {
	l, err := v.run(obj, script)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	value := l.Get(-1)
	if value.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", value.Type())
	}
	return luajson.Encode(value)
}

// action is ExecuteResourceAction for an action that returns the object it changed (the form this
// project's actions use): that object, with Argo CD's repair of empty tables that were objects.
func (v vm) action(obj *unstructured.Unstructured, script string) (map[string]any, error) {
	text, err := v.tableJSON(obj, script)
	if err != nil {
		return nil, err
	}
	if len(text) > 0 && text[0] == '[' {
		return nil, errors.New("the action returned a list of impacted resources; only patching the object itself is supported here")
	}
	var changed map[string]any
	if err := json.Unmarshal(text, &changed); err != nil {
		return nil, err
	}
	original := obj.DeepCopy().Object
	return cleanObject(changed, roundTrip(original)), nil
}

// discovery is ExecuteResourceActionDiscovery for one script, sorted by name.
func (v vm) discovery(obj *unstructured.Unstructured, script string) ([]resourceAction, error) {
	text, err := v.tableJSON(obj, script)
	if err != nil {
		return nil, err
	}
	actions := []resourceAction{}
	if string(text) == "[]" {
		return actions, nil
	}
	var found map[string]any
	if err := json.Unmarshal(text, &found); err != nil {
		return nil, err
	}
	for name, entry := range found {
		action := resourceAction{Name: name}
		// An empty table ({}) encodes as [], an action with every default.
		if fields, ok := entry.(map[string]any); ok {
			action.Disabled, _ = fields["disabled"].(bool)
			raw, err := json.Marshal(fields)
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(raw, &action); err != nil {
				return nil, err
			}
		}
		actions = append(actions, action)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

// decodeValue turns a decoded object into Lua values as Argo CD's decodeValue does: numbers of any
// kind become Lua numbers, json.Number a string, anything unknown nil.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		list := l.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(decodeValue(l, item))
		}
		return list
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return table
	}
	return lua.LNil
}

// cleanObject undoes what Lua cannot tell apart: an empty table that was an object in the original
// comes back as [] and is made {} again (Argo CD's cleanReturnedObj).
func cleanObject(changed, original map[string]any) map[string]any {
	for key, before := range original {
		after, ok := changed[key]
		if !ok {
			continue
		}
		switch after := after.(type) {
		case map[string]any:
			if before, ok := before.(map[string]any); ok {
				changed[key] = cleanObject(after, before)
			}
		case []any:
			switch before := before.(type) {
			case map[string]any:
				if len(after) == 0 {
					changed[key] = map[string]any{}
				}
			case []any:
				changed[key] = cleanList(after, before)
			}
		}
	}
	return changed
}

func cleanList(changed, original []any) []any {
	for i := range changed {
		if i >= len(original) {
			break
		}
		switch after := changed[i].(type) {
		case map[string]any:
			if before, ok := original[i].(map[string]any); ok {
				changed[i] = cleanObject(after, before)
			}
		case []any:
			if before, ok := original[i].([]any); ok {
				changed[i] = cleanList(after, before)
			}
		}
	}
	return changed
}

// roundTrip gives value as encoding/json decodes it (float64 numbers), for comparisons.
func roundTrip(value map[string]any) map[string]any {
	text, err := json.Marshal(value)
	if err != nil {
		return value
	}
	var out map[string]any
	if err := json.Unmarshal(text, &out); err != nil {
		return value
	}
	return out
}
