package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// Output formats of every listing (-o, as kubectl and nomad): a table for
// people, JSON or YAML of what the API answered for machines. --json stays
// as the short form of -o json.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

var jsonFlag = &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a table (as -o json)"}

var outputFlag = &ucli.StringFlag{Name: "output", Aliases: []string{"o", "format"}, Value: formatTable,
	Usage: "output format: table, json or yaml"}

// outputFlags go on every command that prints data.
var outputFlags = []ucli.Flag{outputFlag, jsonFlag}

// format is the output format asked for; a value other than table, json
// and yaml is a usage error (exit 2), not a silent table.
func format(c *ucli.Context) (string, error) {
	f := strings.ToLower(c.String("output"))
	if c.Bool("json") {
		if c.IsSet("output") && f != formatJSON {
			return "", ucli.Exit(fmt.Sprintf("error: --json and -o %s disagree", f), exitUsage)
		}
		return formatJSON, nil
	}
	switch f {
	case "", formatTable:
		return formatTable, nil
	case formatJSON, formatYAML:
		return f, nil
	}
	return "", ucli.Exit(fmt.Sprintf("error: -o %q: the formats are table, json and yaml", c.String("output")), exitUsage)
}

// printed prints v in the format asked for and reports true, or reports
// false when a table is wanted (the caller draws it).
func printed(c *ucli.Context, v any) (bool, error) {
	f, err := format(c)
	if err != nil || f == formatTable {
		return false, err
	}
	return true, printAs(c.App.Writer, f, v)
}

func printJSON(c *ucli.Context, v any) error { return printAs(c.App.Writer, formatJSON, v) }

func printAs(w io.Writer, f string, v any) error {
	if f == formatYAML {
		b, err := toYAML(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// toYAML writes v's JSON as YAML: the API types carry JSON tags only, and
// going through JSON keeps their names, omissions and field order.
func toYAML(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := yamlNode(dec)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	return out.Bytes(), nil
}

// yamlNode reads one JSON value from dec as a YAML node, objects keeping
// their keys' order.
func yamlNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for dec.More() {
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string)})
			}
			v, err := yamlNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(t.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// ndjson writes one JSON object per line: the stream `--wait -o json`
// prints, which a script reads line by line.
type ndjson struct{ enc *json.Encoder }

func newNDJSON(w io.Writer) *ndjson { return &ndjson{enc: json.NewEncoder(w)} }

func (n *ndjson) emit(v any) error { return n.enc.Encode(v) }
