package verbs

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Negative numbers as values. kong reads "-1" as the short flag -1 wherever it appears, so
// `config set cluster.images_minimal_replica -1` failed with "unknown flag -1"; LXD takes it
// as the value. No flag of either binary has a digit for its short name (a test walks both
// trees), so a word that starts with "-" and a digit can only be a value: EscapeNegativeNumbers
// marks it before kong scans it, and the mappers Options installs remove the mark when they
// decode the value, whatever its type (string, number, duration, path, or a slice of them).

// escapeMark starts a marked word; no argument from a command line can contain NUL.
const escapeMark = "\x00"

// negativeNumber is a word that kong would otherwise take for a short flag.
var negativeNumber = regexp.MustCompile(`^-[0-9.]`)

// EscapeNegativeNumbers marks the negative numbers of args up to a "--" (after it kong
// takes every word as a value anyway).
func EscapeNegativeNumbers(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if negativeNumber.MatchString(a) {
			out[i] = escapeMark + a
		}
	}
	return out
}

// negativeNumberMappers wrap kong's own mappers of every value kind so that they decode a
// marked word as the word without its mark.
func negativeNumberMappers() []kong.Option {
	defaults := kong.NewRegistry().RegisterDefaults()
	kinds := []reflect.Kind{reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32,
		reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64}
	var opts []kong.Option
	for _, k := range kinds {
		opts = append(opts, kong.KindMapper(k, unmarking(defaults.ForType(kindType(k)))))
	}
	dur := reflect.TypeOf(time.Duration(0))
	opts = append(opts, kong.TypeMapper(dur, unmarking(defaults.ForType(dur))))
	for _, name := range []string{"path", "existingfile", "existingdir", "filecontent"} {
		opts = append(opts, kong.NamedMapper(name, unmarking(defaults.ForNamedType(name, reflect.TypeOf("")))))
	}
	return opts
}

// kindType is a type of kind k.
func kindType(k reflect.Kind) reflect.Type {
	for _, v := range []any{"", int(0), int8(0), int16(0), int32(0), int64(0), uint(0), uint8(0),
		uint16(0), uint32(0), uint64(0), float32(0), float64(0)} {
		if t := reflect.TypeOf(v); t.Kind() == k {
			return t
		}
	}
	panic("verbs: no type of kind " + k.String())
}

// unmarking decodes with m after removing the mark from the next word, if it has one.
func unmarking(m kong.Mapper) kong.MapperFunc {
	return func(ctx *kong.DecodeContext, target reflect.Value) error {
		t := ctx.Scan.Peek()
		if s, ok := t.Value.(string); ok && strings.HasPrefix(s, escapeMark) {
			ctx.Scan.Pop()
			typ := t.Type
			if typ == kong.UntypedToken {
				typ = kong.FlagValueToken
			}
			ctx.Scan.PushTyped(strings.TrimPrefix(s, escapeMark), typ)
		}
		return m.Decode(ctx, target)
	}
}

// CheckNoDigitShortFlags fails when a flag of app has a digit for its short name, which
// would make EscapeNegativeNumbers turn that flag into a value.
func CheckNoDigitShortFlags(app *kong.Application) error {
	return kong.Visit(app.Node, func(n kong.Visitable, next kong.Next) error {
		if f, ok := n.(*kong.Flag); ok && f.Short >= '0' && f.Short <= '9' {
			return fmt.Errorf("flag --%s has the short name -%c, which EscapeNegativeNumbers takes for a negative number", f.Name, f.Short)
		}
		return next(nil)
	})
}
