package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"orch/nodeagent/api"
	"orch/nodeagent/config"
)

// prompter asks questions on the CLI's streams; passwords are read without echo on a terminal.
type prompter struct {
	g  *Globals
	in *bufio.Reader
}

func (p *prompter) ask(question, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(p.g.Stdout, "%s [default=%s]: ", question, def)
	} else {
		fmt.Fprintf(p.g.Stdout, "%s: ", question)
	}
	line, err := p.in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no answer to %q: %w", question, err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return def, nil
	}
	return line, nil
}

func (p *prompter) yesNo(question string, def bool) (bool, error) {
	d := "no"
	if def {
		d = "yes"
	}
	for {
		a, err := p.ask(question+" (yes/no)", d)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(a) {
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(p.g.Stdout, "Please answer yes or no.")
	}
}

func (p *prompter) secret(question string) (string, error) {
	f, ok := p.g.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return p.ask(question, "")
	}
	fmt.Fprintf(p.g.Stdout, "%s: ", question)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(p.g.Stdout)
	return strings.TrimSpace(string(b)), err
}

// newPassword asks for a new secret twice ("Again: "), as LXD does, until both match.
func (p *prompter) newPassword(question string) (string, error) {
	for {
		pw, err := p.secret(question)
		if err != nil {
			return "", err
		}
		again, err := p.secret("Again")
		if err != nil {
			return "", err
		}
		if pw == again {
			return pw, nil
		}
		fmt.Fprintln(p.g.Stdout, "The passwords do not match; try again.")
	}
}

// interview asks the guide's questions in its order and builds a preseed.
func interview(g *Globals, in *bufio.Reader) (*api.Preseed, bool, error) {
	p := &prompter{g: g, in: in}
	use, err := p.yesNo("Would you like to use clustering?", true)
	if err != nil {
		return nil, false, err
	}
	if !use {
		return nil, false, errors.New("nodeagent always runs as a cluster member; answer yes (a one-member cluster is fine)")
	}
	host, _ := os.Hostname()
	name, err := p.ask("What member name should be used to identify this server in the cluster?", host)
	if err != nil {
		return nil, false, err
	}
	addr, err := p.ask("What IP address or DNS name should be used to reach this server?", defaultIP())
	if err != nil {
		return nil, false, err
	}
	if addr, err = config.NormaliseAddress(addr, false); err != nil {
		return nil, false, fmt.Errorf("address: %w", err)
	}
	pre := &api.Preseed{Config: map[string]string{"core.https_address": addr},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: name}}
	joining, err := p.yesNo("Are you joining an existing cluster?", false)
	if err != nil {
		return nil, false, err
	}
	if joining {
		return askJoin(p, pre, addr)
	}
	return askBootstrap(p, pre)
}

func askJoin(p *prompter, pre *api.Preseed, addr string) (*api.Preseed, bool, error) {
	pre.Config = nil
	pre.Cluster.ServerAddress = addr
	hasToken, err := p.yesNo("Do you have a join token?", true)
	if err != nil {
		return nil, false, err
	}
	if hasToken {
		tok, err := p.secret("Please provide join token")
		if err != nil {
			return nil, false, err
		}
		pre.Cluster.ClusterToken = tok
	} else {
		member, err := p.ask("IP address or FQDN of an existing cluster member", "")
		if err != nil {
			return nil, false, err
		}
		if member, err = config.NormaliseAddress(member, false); err != nil {
			return nil, false, fmt.Errorf("member address: %w", err)
		}
		certPEM, fp, err := fetchCertificate(member)
		if err != nil {
			return nil, false, err
		}
		fmt.Fprintf(p.g.Stdout, "Cluster fingerprint: %s\nYou can validate this fingerprint by running `nodeagent cluster fingerprint` on an existing member.\n", fp)
		ok, err := p.yesNo("Is this the correct fingerprint?", false)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, errors.New("fingerprint not confirmed: nothing changed")
		}
		pw, err := p.secret("Cluster trust password")
		if err != nil {
			return nil, false, err
		}
		pre.Cluster.ClusterAddress, pre.Cluster.ClusterCertificate, pre.Cluster.ClusterPassword = member, certPEM, pw
	}
	wipe, err := p.yesNo("All existing data is lost when joining a cluster, continue?", false)
	if err != nil {
		return nil, false, err
	}
	if !wipe {
		return nil, false, errors.New("not joining: nothing changed")
	}
	if err := askMemberConfig(p, pre.Cluster); err != nil {
		return nil, false, err
	}
	return pre, true, nil
}

// askMemberConfig asks, as LXD does, for each member-specific key of the cluster's pools
// ("Choose "source" property for storage pool "local": "); an empty answer keeps the
// default. The cluster is asked which keys there are, authenticated as the join will be.
func askMemberConfig(p *prompter, c *api.ClusterPut) error {
	keys, err := joinInfo(c)
	if err != nil {
		return err
	}
	for _, k := range keys {
		v, err := p.ask("Choose "+k.Description, "")
		if err != nil {
			return err
		}
		if v != "" {
			c.MemberConfig = append(c.MemberConfig, api.MemberConfigKey{Entity: k.Entity, Name: k.Name, Key: k.Key, Value: v})
		}
	}
	return nil
}

// joinInfo asks a member of the cluster to join, over TLS pinned to the cluster's
// fingerprint (the token's, or the certificate the operator confirmed), which
// member-specific keys a joining member supplies.
func joinInfo(c *api.ClusterPut) ([]api.MemberConfigKey, error) {
	req := api.ClusterJoinInfoPost{ServerName: c.ServerName, Password: c.ClusterPassword}
	var addrs []string
	var fp string
	if c.ClusterToken != "" {
		tok, err := api.DecodeJoinToken(c.ClusterToken)
		if err != nil {
			return nil, fmt.Errorf("join token: %w", err)
		}
		req.TokenSecret, addrs, fp = tok.Secret, tok.Addresses, tok.Fingerprint
	} else {
		der, err := certDER(c.ClusterCertificate)
		if err != nil {
			return nil, err
		}
		addrs, fp = []string{c.ClusterAddress}, api.Fingerprint(der)
	}
	var lastErr error
	for _, addr := range addrs {
		cfg := api.TLSConfig(tls.Certificate{}, fp)
		cfg.Certificates = nil // the request authenticates with the password or token
		cl := api.NewTLSClient(addr, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		info, err := cl.JoinInfo(ctx, req)
		cancel()
		cl.Close()
		if err == nil {
			return info.MemberConfig, nil
		}
		var ae *api.Error
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		lastErr = fmt.Errorf("contacting %s: %w", addr, err)
	}
	return nil, fmt.Errorf("asking the cluster for its member-specific keys: %w", lastErr)
}

// certDER decodes the PEM certificate the operator confirmed.
func certDER(certPEM string) ([]byte, error) {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return nil, errors.New("the cluster certificate is not PEM")
	}
	return b.Bytes, nil
}

func askBootstrap(p *prompter, pre *api.Preseed) (*api.Preseed, bool, error) {
	setPw, err := p.yesNo("Setup password authentication on the cluster?", false)
	if err != nil {
		return nil, false, err
	}
	if setPw {
		pw, err := p.newPassword("Trust password for new clients")
		if err != nil {
			return nil, false, err
		}
		pre.Config["core.trust_password"] = pw
	}
	if err := askPool(p, pre); err != nil {
		return nil, false, err
	}
	if err := askBridge(p, pre); err != nil {
		return nil, false, err
	}
	return pre, false, nil
}

// askPool offers a storage pool; one made becomes the default profile's root disk, as in
// LXD.
func askPool(p *prompter, pre *api.Preseed) error {
	pool, err := p.yesNo("Do you want to configure a new storage pool?", false)
	if err != nil || !pool {
		return err
	}
	name, err := p.ask("Name of the storage pool", "default")
	if err != nil {
		return err
	}
	driver, err := p.ask("Name of the storage backend to use (dir, btrfs, lvm, zfs)", "dir")
	if err != nil {
		return err
	}
	pre.StoragePools = append(pre.StoragePools, api.StoragePool{Name: name, Driver: driver})
	defaultProfileDevice(pre, "root", map[string]string{"path": "/", "pool": name, "type": "disk"})
	return nil
}

// askBridge offers a bridge; one made becomes the default profile's eth0, as in LXD.
func askBridge(p *prompter, pre *api.Preseed) error {
	bridge, err := p.yesNo("Would you like to create a new network bridge?", false)
	if err != nil || !bridge {
		return err
	}
	name, err := p.ask("What should the new bridge be called?", "orchbr0")
	if err != nil {
		return err
	}
	v4, err := p.ask("What IPv4 address should be used? (CIDR subnet notation, \"auto\" or \"none\")", "auto")
	if err != nil {
		return err
	}
	pre.Networks = append(pre.Networks, api.Network{Name: name, Type: "bridge", Config: map[string]string{"ipv4.address": v4, "ipv6.address": "none"}})
	defaultProfileDevice(pre, "eth0", map[string]string{"name": "eth0", "nictype": "bridged", "parent": name, "type": "nic"})
	return nil
}

// defaultProfileDevice adds a device to the preseed's default profile.
func defaultProfileDevice(pre *api.Preseed, dev string, cfg map[string]string) {
	for i := range pre.Profiles {
		if pre.Profiles[i].Name == "default" {
			pre.Profiles[i].Devices[dev] = cfg
			return
		}
	}
	pre.Profiles = append(pre.Profiles, api.Profile{Name: "default", Devices: map[string]map[string]string{dev: cfg}})
}

// fetchCertificate reads the certificate a member presents, for the operator to confirm.
func fetchCertificate(addr string) (certPEM, fingerprint string, err error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // verified by the operator's confirmation
	if err != nil {
		return "", "", fmt.Errorf("contacting %s: %w", addr, err)
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", "", fmt.Errorf("%s presented no certificate", addr)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})), api.Fingerprint(certs[0].Raw), nil
}

// defaultIP is the first non-loopback address, as LXD suggests.
func defaultIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}
