package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// credentials are the signers offered to one server: key files first, then the agent's.
type credentials struct {
	signers []ssh.Signer
	agent   net.Conn // open agent connection; closed after the handshake
}

// close releases the agent connection.
func (cr *credentials) close() {
	if cr.agent != nil {
		cr.agent.Close()
	}
}

// authMethods returns a single public-key method offering every signer.
func (cr *credentials) authMethods() []ssh.AuthMethod {
	signers := cr.signers
	cb := func() ([]ssh.Signer, error) { return signers, nil }
	return []ssh.AuthMethod{ssh.PublicKeysCallback(cb)}
}

// loadCredentials reads the configured key files and connects to the agent. An encrypted
// key is usable only through the agent; without one it is an error naming the file.
func loadCredentials(cfg Config) (*credentials, error) {
	cr := &credentials{}
	agentSigners, agentConn, agentErr := dialAgent(cfg.AgentSocket)
	cr.agent = agentConn
	files, explicit, err := keyFiles(cfg)
	if err != nil {
		return nil, err
	}
	var encrypted []string
	for _, f := range files {
		s, err := readKey(f)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			encrypted = append(encrypted, f)
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			// A default key that is absent is simply not offered.
		case err != nil:
			cr.close()
			return nil, fmt.Errorf("%s: %w: private key %s: %w", cfg.Name, ErrAuth, f, err)
		default:
			cr.signers = append(cr.signers, s)
		}
	}
	cr.signers = append(cr.signers, agentSigners...)
	if err := checkUsable(cfg, cr, encrypted, explicit, agentErr); err != nil {
		cr.close()
		return nil, err
	}
	return cr, nil
}

// checkUsable reports encrypted keys that cannot be used and the lack of any credential.
func checkUsable(cfg Config, cr *credentials, encrypted []string, explicit bool, agentErr error) error {
	if len(encrypted) > 0 && cr.agent == nil && (explicit || len(cr.signers) == 0) {
		return fmt.Errorf("%s: %w: private key %s is encrypted and no ssh-agent is available "+
			"(SSH_AUTH_SOCK unset or unusable); load it with ssh-add or use an unencrypted key",
			cfg.Name, ErrAuth, encrypted[0])
	}
	if len(cr.signers) > 0 {
		return nil
	}
	if agentErr != nil {
		return fmt.Errorf("%s: %w: no private key found and ssh-agent failed: %w", cfg.Name, ErrAuth, agentErr)
	}
	return fmt.Errorf("%s: %w: no private key found (set ansible_ssh_private_key_file, "+
		"create ~/.ssh/id_ed25519 or start ssh-agent)", cfg.Name, ErrAuth)
}

// keyFiles lists the key files to try and whether they were given explicitly.
func keyFiles(cfg Config) (files []string, explicit bool, err error) {
	if len(cfg.KeyFiles) > 0 {
		return cfg.KeyFiles, true, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, false, nil // no home: rely on the agent alone
	}
	for _, n := range defaultKeyNames {
		files = append(files, filepath.Join(home, ".ssh", n))
	}
	return files, false, nil
}

// readKey parses one private key file.
func readKey(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(pem)
}

// dialAgent connects to the ssh-agent at socket and lists its signers. An unset or
// disabled socket yields nothing and no error.
func dialAgent(socket string) ([]ssh.Signer, net.Conn, error) {
	if socket == "" || socket == AgentNone {
		return nil, nil, nil
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-agent %s: %w", socket, err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ssh-agent %s: listing keys: %w", socket, err)
	}
	return signers, conn, nil
}
