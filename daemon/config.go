package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	ucli "github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"
)

// meshd's configuration file is HCL, the format of Consul and Nomad, whose
// operators run the same hosts; its JSON form (a file ending in .json)
// suits configuration management. Every setting of the file is one of
// meshd's flags, spelled with underscores (data_dir = "/var/lib/hostmesh"),
// so a flag added to meshd is a setting of the file with nothing more to do.
// Precedence: a flag on the command line, then its MESH_* environment
// variable, then the file, then the flag's default.

// notInFile are the flags a file cannot set, and why.
var notInFile = map[string]string{
	"config-file":  "it names the files themselves",
	"config-dir":   "it names the files themselves",
	"check-config": "it is a command-line action",
	"help":         "it is a command-line action",
	"version":      "it is a command-line action",
	"gossip-key":   "a secret does not belong in a configuration file: set gossip_key_file to a file (mode 0600) holding the key",
}

// setting is one key of a configuration file, as the flag values it sets.
type setting struct {
	flag   string
	values []string
	where  string // FILE:LINE, for errors
}

// configFiles lists the files meshd reads: --config-file in order, then
// --config-dir's *.hcl and *.json in lexical order (as Consul). A later
// file's setting replaces an earlier one's.
func configFiles(files []string, dir string) ([]string, error) {
	out := append([]string(nil), files...)
	if dir == "" {
		return out, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--config-dir: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".hcl") || strings.HasSuffix(e.Name(), ".json")) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out, nil
}

// readConfig parses the files into settings by flag name. Unknown keys,
// blocks, wrong types and secrets are errors naming the file, the line and
// the key.
func readConfig(flags []ucli.Flag, files []string) (map[string]setting, error) {
	byName := map[string]ucli.Flag{}
	for _, f := range flags {
		for _, n := range f.Names() {
			byName[n] = f
		}
	}
	out := map[string]setting{}
	p := hclparse.NewParser()
	for _, path := range files {
		var f *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(path, ".json") {
			f, diags = p.ParseJSONFile(path)
		} else {
			f, diags = p.ParseHCLFile(path)
		}
		if diags.HasErrors() {
			return nil, fmt.Errorf("config file %s: %w", path, diags)
		}
		attrs, diags := f.Body.JustAttributes()
		if diags.HasErrors() {
			return nil, fmt.Errorf("config file %s: %w (settings are key = value, no blocks)", path, diags)
		}
		// In file order, so that the first error is the first in the file.
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return attrs[keys[i]].NameRange.Start.Byte < attrs[keys[j]].NameRange.Start.Byte
		})
		for _, key := range keys {
			a := attrs[key]
			where := fmt.Sprintf("%s:%d", path, a.NameRange.Start.Line)
			name := strings.ReplaceAll(key, "_", "-")
			if why, ok := notInFile[name]; ok {
				return nil, fmt.Errorf("%s: %q cannot be set in a configuration file: %s", where, key, why)
			}
			fl, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("%s: unknown setting %q (settings are meshd's flags with _ for -; see meshd --help)", where, key)
			}
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				return nil, fmt.Errorf("%s: %s: %w", where, key, diags)
			}
			vals, err := flagValues(v, isSlice(fl))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", where, key, err)
			}
			out[fl.Names()[0]] = setting{flag: fl.Names()[0], values: vals, where: where}
		}
	}
	return out, nil
}

func isSlice(f ucli.Flag) bool {
	switch f.(type) {
	case *ucli.StringSliceFlag, *ucli.IntSliceFlag, *ucli.Int64SliceFlag, *ucli.Float64SliceFlag, *ucli.Uint64SliceFlag, *ucli.UintSliceFlag:
		return true
	}
	return false
}

// flagValues turns an HCL value into the text a flag parses: one value,
// or a list for a repeatable flag.
func flagValues(v cty.Value, slice bool) ([]string, error) {
	if v.IsNull() {
		return nil, fmt.Errorf("null value")
	}
	t := v.Type()
	if t.IsTupleType() || t.IsListType() || t.IsSetType() {
		if !slice {
			return nil, fmt.Errorf("a list given to a setting that takes one value")
		}
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, err := primitive(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := primitive(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func primitive(v cty.Value) (string, error) {
	if v.IsNull() || !v.IsKnown() {
		return "", fmt.Errorf("null value")
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	case cty.Bool:
		return strconv.FormatBool(v.True()), nil
	}
	return "", fmt.Errorf("want a string, number or bool, got %s", v.Type().FriendlyName())
}

// explicitFlags are the flags given on the command line or by environment:
// they win over the file, at start and on every reload.
func explicitFlags(c *ucli.Context) map[string]bool {
	out := map[string]bool{}
	for _, f := range c.App.Flags {
		n := f.Names()[0]
		if c.IsSet(n) {
			out[n] = true
		}
	}
	return out
}

// applyConfig sets each file setting whose flag was not given explicitly.
// A value the flag cannot parse is an error naming the file and line.
func applyConfig(c *ucli.Context, settings map[string]setting, explicit map[string]bool) error {
	names := make([]string, 0, len(settings))
	for n := range settings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := settings[n]
		if explicit[n] {
			continue
		}
		for _, v := range s.values {
			if err := c.Set(n, v); err != nil {
				return fmt.Errorf("%s: %s = %q: %w", s.where, strings.ReplaceAll(n, "-", "_"), v, err)
			}
		}
	}
	return nil
}

// loadConfig reads --config-file and --config-dir and applies them under
// the command line and the environment. It returns the files read and the
// explicit flags, which a reload needs.
func loadConfig(c *ucli.Context) (files []string, explicit map[string]bool, err error) {
	explicit = explicitFlags(c)
	files, err = configFiles(c.StringSlice("config-file"), c.String("config-dir"))
	if err != nil {
		return nil, nil, err
	}
	settings, err := readConfig(c.App.Flags, files)
	if err != nil {
		return nil, nil, err
	}
	if err := applyConfig(c, settings, explicit); err != nil {
		return nil, nil, err
	}
	return files, explicit, nil
}
