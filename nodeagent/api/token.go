package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrBadToken marks a join token that cannot be decoded.
var ErrBadToken = errors.New("invalid join token")

// JoinToken is what `nodeagent cluster add NAME` prints, base64-encoded JSON as LXD's: it
// carries the name it was issued for, the one-use secret, the cluster certificate's
// fingerprint and the members' cluster addresses.
type JoinToken struct {
	ServerName  string    `json:"server_name"`
	Secret      string    `json:"secret"`
	Fingerprint string    `json:"fingerprint"`
	Addresses   []string  `json:"addresses"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Encode returns the token's printable form.
func (t JoinToken) Encode() string {
	b, _ := json.Marshal(t)
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeJoinToken parses a token's printable form. The error never repeats the token.
func DecodeJoinToken(s string) (*JoinToken, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadToken)
	}
	var t JoinToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: not a token document", ErrBadToken)
	}
	switch {
	case t.ServerName == "":
		return nil, fmt.Errorf("%w: server_name missing", ErrBadToken)
	case t.Secret == "":
		return nil, fmt.Errorf("%w: secret missing", ErrBadToken)
	case t.Fingerprint == "":
		return nil, fmt.Errorf("%w: fingerprint missing", ErrBadToken)
	case len(t.Addresses) == 0:
		return nil, fmt.Errorf("%w: addresses missing", ErrBadToken)
	}
	return &t, nil
}

// JoinTokenOperation is the metadata of a join token's operation (class token), as LXD's:
// what `lxc cluster add` reads back.
type JoinTokenOperation struct {
	ServerName  string    `json:"serverName"`
	Secret      string    `json:"secret"`
	Fingerprint string    `json:"fingerprint"`
	Addresses   []string  `json:"addresses"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// Token is the join token the operation carries.
func (o JoinTokenOperation) Token() JoinToken {
	return JoinToken{ServerName: o.ServerName, Secret: o.Secret, Fingerprint: o.Fingerprint, Addresses: o.Addresses, ExpiresAt: o.ExpiresAt}
}

// Metadata is the operation metadata of the token t.
func (t JoinToken) Metadata() map[string]any {
	return map[string]any{"serverName": t.ServerName, "secret": t.Secret, "fingerprint": t.Fingerprint,
		"addresses": t.Addresses, "expiresAt": t.ExpiresAt.Format(time.RFC3339Nano)}
}

// CertificateAddToken is what `lxc config trust add` prints (base64 JSON, as LXD's): the
// client's name, the cluster certificate's fingerprint, the members' addresses and the
// one-use secret; `lxc remote add NAME TOKEN` sends it back as the password.
type CertificateAddToken struct {
	ClientName  string    `json:"client_name"`
	Fingerprint string    `json:"fingerprint"`
	Addresses   []string  `json:"addresses"`
	Secret      string    `json:"secret"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// DecodeCertificateAddToken parses a certificate-add token's printable form; the error
// never repeats it.
func DecodeCertificateAddToken(s string) (*CertificateAddToken, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadToken)
	}
	var t CertificateAddToken
	if err := json.Unmarshal(b, &t); err != nil || t.Secret == "" || t.ClientName == "" {
		return nil, fmt.Errorf("%w: not a certificate-add token", ErrBadToken)
	}
	return &t, nil
}
