package cli

import (
	"context"
	"io"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// listing is the Action of a command that reads one listing and prints it:
// no arguments, one read through the API client (read is a method
// expression such as (*api.Client).Hosts), then the data as is for
// -o json|yaml, or table's rows in aligned columns. The listings share it
// so that they take the same flags and fail with the same exit codes.
func listing[T any](read func(*api.Client, context.Context) (T, error), table func(w io.Writer, v T)) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		if c.NArg() != 0 {
			return usage(c, "no arguments")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		v, err := read(cl, c.Context)
		if err != nil {
			return err
		}
		if ok, err := printed(c, v); ok || err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		table(w, v)
		return w.Flush()
	}
}
