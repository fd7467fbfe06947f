package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// permute moves a command's flags ahead of its arguments, so
// `meshctl migrate vm7 --wait` works as users type it: urfave/cli v2 stops
// parsing flags at the first argument. Flags that take a value keep it.
func permute(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Global flags come before the command name.
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if takesValue(app.Flags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	// Descend through subcommands (`meshctl tls cert create`): the flags
	// belong to the last one named.
	for i+1 < len(args) {
		sub := subcommand(cmd, args[i+1])
		if sub == nil {
			break
		}
		cmd, i = sub, i+1
	}
	out := append([]string{}, args[:i+1]...)
	var flags, pos []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			pos = append(pos, rest[j:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(append(out, flags...), pos...)
}

// takesValue reports whether arg names a non-boolean flag given without "=value".
func takesValue(flags []ucli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*ucli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

func subcommand(cmd *ucli.Command, name string) *ucli.Command {
	for _, sub := range cmd.Subcommands {
		if sub.HasName(name) {
			return sub
		}
	}
	return nil
}
