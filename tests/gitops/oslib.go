package main

// Argo CD's "safe" os module: os.time and os.date only, nothing that reads files, runs programs or
// exits. Like Argo CD, openSafeOs registers the functions under the table library's name, so a
// script without the standard libraries has no global os and reaches the module through
// require("os") (safeOsLoader); Argo CD's own actions begin with `local os = require("os")`.

import (
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var osFunctions = map[string]lua.LGFunction{
	"time": osTime,
	"date": osDate,
}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, osFunctions))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), osFunctions))
	return 1
}

// osTime is os.time(): now, or the time a {year, month, day, hour, min, sec} table names.
func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	table := l.CheckTable(1)
	field := func(key string, fallback int) int {
		if n, ok := table.RawGetString(key).(lua.LNumber); ok {
			return int(n)
		}
		return fallback
	}
	t := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(t.Unix()))
	return 1
}

// osDate is os.date(format, time): "!" asks for UTC, "*t" for a table, anything else strftime.
func osDate(l *lua.LState) int {
	t := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
		if strings.HasPrefix(format, "!") {
			t = time.Now().UTC()
			format = strings.TrimLeft(format, "!")
		}
		if l.GetTop() >= 2 {
			t = time.Unix(l.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			l.Push(dateTable(l, t))
			return 1
		}
	}
	l.Push(lua.LString(strftime(t, format)))
	return 1
}

func dateTable(l *lua.LState, t time.Time) *lua.LTable {
	table := l.NewTable()
	for key, value := range map[string]int{
		"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(),
		"min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0,
	} {
		table.RawSetString(key, lua.LNumber(value))
	}
	table.RawSetString("isdst", lua.LFalse)
	return table
}

// The conversions Argo CD's os.date knows, as Go layouts (%x is Argo CD's, slashes and all).
var dateLayouts = map[byte]string{
	'a': "mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'P': "pm", 'S': "05",
	'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

// strftime expands %-conversions; %% is a percent sign and unknown conversions stay as written.
func strftime(t time.Time, format string) string {
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			out.WriteByte(c)
			continue
		}
		i++
		switch next := format[i]; {
		case next == '%':
			out.WriteByte('%')
		case dateLayouts[next] != "":
			out.WriteString(t.Format(dateLayouts[next]))
		case next == 'w':
			out.WriteString(strconv.Itoa(int(t.Weekday())))
		default:
			out.WriteByte('%')
			out.WriteByte(next)
		}
	}
	return out.String()
}
