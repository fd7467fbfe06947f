package cli

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/pki"
)

// TLSCommand creates the mesh's CA and its certificates, as `consul tls`
// does: files in the current directory (or --dir), never overwritten.
var TLSCommand = &ucli.Command{
	Name:  "tls",
	Usage: "create the mesh's certificate authority and host or operator certificates",
	Subcommands: []*ucli.Command{
		{
			Name:  "ca",
			Usage: "the mesh's certificate authority",
			Subcommands: []*ucli.Command{{
				Name:  "create",
				Usage: "create hostmesh-ca.pem and hostmesh-ca-key.pem (keep the key off the hosts)",
				Flags: []ucli.Flag{dirFlag, &ucli.IntFlag{Name: "days", Value: 5 * 365, Usage: "validity in days"}},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 0 {
						return usage(c, "no arguments")
					}
					days := c.Int("days")
					if days < 1 {
						return ucli.Exit("error: --days must be at least 1", exitUsage)
					}
					ca, err := pki.NewCA(time.Duration(days) * 24 * time.Hour)
					if err != nil {
						return ucli.Exit("error: "+err.Error(), exitFailed)
					}
					certPath, keyPath, err := ca.Save(c.String("dir"))
					if err != nil {
						return ucli.Exit("error: "+err.Error(), exitFailed)
					}
					fmt.Fprintf(c.App.Writer, "created CA certificate %s (give it to every host: --ca-file, and to operators: MESH_CACERT)\n", certPath)
					fmt.Fprintf(c.App.Writer, "created CA key %s (0600; it signs certificates: keep it off the hosts)\n", keyPath)
					return nil
				},
			}},
		},
		{
			Name:  "cert",
			Usage: "host and operator certificates",
			Subcommands: []*ucli.Command{{
				Name:  "create",
				Usage: "create NAME.pem and NAME-key.pem signed by the CA (--host NAME or --client NAME)",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "host", Usage: "a host certificate for meshd --name NAME (serves and dials)"},
					&ucli.StringFlag{Name: "client", Usage: "an operator's client certificate"},
					&ucli.StringSliceFlag{Name: "ip", Usage: "IP address the host is reached at (repeat; 127.0.0.1 is always in)"},
					&ucli.StringSliceFlag{Name: "dns", Usage: "extra DNS name of the host (repeat)"},
					dirFlag,
					&ucli.StringFlag{Name: "ca", Usage: "CA certificate (default DIR/" + pki.CAFile + ")"},
					&ucli.StringFlag{Name: "ca-key", Usage: "CA key (default DIR/" + pki.CAKeyFile + ")"},
					&ucli.IntFlag{Name: "days", Value: 365, Usage: "validity in days"},
				},
				Action: createCert,
			}},
		},
	},
}

var dirFlag = &ucli.StringFlag{Name: "dir", Value: ".", Usage: "directory of the files"}

func createCert(c *ucli.Context) error {
	if c.NArg() != 0 {
		return usage(c, "no arguments (--host NAME or --client NAME)")
	}
	host, client := c.String("host"), c.String("client")
	if (host == "") == (client == "") {
		return usage(c, "exactly one of --host NAME and --client NAME")
	}
	days := c.Int("days")
	if days < 1 {
		return ucli.Exit("error: --days must be at least 1", exitUsage)
	}
	dir := c.String("dir")
	caPath, caKey := c.String("ca"), c.String("ca-key")
	if caPath == "" {
		caPath = filepath.Join(dir, pki.CAFile)
	}
	if caKey == "" {
		caKey = filepath.Join(dir, pki.CAKeyFile)
	}
	spec := pki.CertSpec{Name: host + client, DNS: c.StringSlice("dns"),
		NotAfter: time.Now().Add(time.Duration(days) * 24 * time.Hour)}
	for _, s := range c.StringSlice("ip") {
		ip := net.ParseIP(s)
		if ip == nil {
			return ucli.Exit(fmt.Sprintf("error: --ip %q: not an IP address", s), exitUsage)
		}
		spec.IPs = append(spec.IPs, ip)
	}
	if client != "" && (len(spec.IPs) > 0 || len(spec.DNS) > 0) {
		return ucli.Exit("error: --ip and --dns are for host certificates", exitUsage)
	}
	if err := pki.ValidName(spec.Name); err != nil {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	ca, err := pki.LoadCA(caPath, caKey)
	if err != nil {
		return ucli.Exit("error: "+err.Error()+" (create the CA first: meshctl tls ca create)", exitFailed)
	}
	var kp *pki.KeyPair
	if host != "" {
		kp, err = ca.HostCert(spec)
	} else {
		kp, err = ca.ClientCert(spec)
	}
	if err != nil {
		return ucli.Exit("error: "+err.Error(), exitFailed)
	}
	certPath, keyPath, err := kp.Save(dir)
	if err != nil {
		return ucli.Exit("error: "+err.Error(), exitFailed)
	}
	if host != "" {
		fmt.Fprintf(c.App.Writer, "created host certificate %s for %s (DNS %v, IP %v)\n", certPath, host, kp.Cert.DNSNames, kp.Cert.IPAddresses)
		fmt.Fprintf(c.App.Writer, "created host key %s (0600)\n", keyPath)
		fmt.Fprintf(c.App.Writer, "use: meshd --name %s --ca-file %s --cert-file %s --key-file %s\n", host, caPath, certPath, keyPath)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "created client certificate %s for operator %s\n", certPath, client)
	fmt.Fprintf(c.App.Writer, "created client key %s (0600)\n", keyPath)
	fmt.Fprintf(c.App.Writer, "use: export MESH_CACERT=%s MESH_CLIENT_CERT=%s MESH_CLIENT_KEY=%s\n", caPath, certPath, keyPath)
	return nil
}
