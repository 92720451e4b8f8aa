// Package api holds the REST types of the nodeagent API and its Go client. orch and the
// agent's own CLI import it; it imports nothing else of the agent. Shapes follow LXD's /1.0
// API so that users of LXD recognise them.
package api

import "time"

// Member statuses, as LXD's ClusterMember.Status.
const (
	StatusOnline  = "Online"
	StatusOffline = "Offline"
	StatusBlocked = "Blocked"
)

// Database roles shown in ClusterMember.Roles, as LXD names them.
const (
	RoleDatabaseLeader  = "database-leader"
	RoleDatabase        = "database"
	RoleDatabaseStandby = "database-standby"
)

// Server is GET /1.0.
type Server struct {
	APIExtensions []string          `json:"api_extensions" yaml:"api_extensions"`
	APIStatus     string            `json:"api_status" yaml:"api_status"`
	APIVersion    string            `json:"api_version" yaml:"api_version"`
	Auth          string            `json:"auth" yaml:"auth"`
	Config        map[string]string `json:"config" yaml:"config"`
	Environment   Environment       `json:"environment" yaml:"environment"`
}

// Environment describes the answering member.
type Environment struct {
	ServerName             string   `json:"server_name" yaml:"server_name"`
	ServerVersion          string   `json:"server_version" yaml:"server_version"`
	SchemaVersion          int      `json:"schema_version" yaml:"schema_version"`
	ServerClustered        bool     `json:"server_clustered" yaml:"server_clustered"`
	Addresses              []string `json:"addresses" yaml:"addresses"`
	ClusterAddress         string   `json:"cluster_address" yaml:"cluster_address"`
	CertificateFingerprint string   `json:"certificate_fingerprint" yaml:"certificate_fingerprint"`
	// Initialised is false until `nodeagent init` has bootstrapped or joined this member.
	Initialised bool `json:"initialised" yaml:"initialised"`
	// Blocked is set when this member waits for others to be upgraded.
	Blocked bool `json:"blocked,omitempty" yaml:"blocked,omitempty"`
	// Message explains Blocked (on which members it waits) or an upgrade requirement.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
}

// ServerPut is the body of PUT and PATCH /1.0.
type ServerPut struct {
	Config map[string]string `json:"config" yaml:"config"`
}

// Cluster is GET /1.0/cluster.
type Cluster struct {
	ServerName   string            `json:"server_name" yaml:"server_name"`
	Enabled      bool              `json:"enabled" yaml:"enabled"`
	MemberConfig []MemberConfigKey `json:"member_config" yaml:"member_config"`
}

// ClusterPut is the body of PUT /1.0/cluster and the `cluster` section of a preseed.
type ClusterPut struct {
	ServerName         string            `json:"server_name" yaml:"server_name"`
	Enabled            bool              `json:"enabled" yaml:"enabled"`
	ServerAddress      string            `json:"server_address,omitempty" yaml:"server_address,omitempty"`
	ClusterAddress     string            `json:"cluster_address,omitempty" yaml:"cluster_address,omitempty"`
	ClusterCertificate string            `json:"cluster_certificate,omitempty" yaml:"cluster_certificate,omitempty"`
	ClusterPassword    string            `json:"cluster_password,omitempty" yaml:"cluster_password,omitempty"`
	ClusterToken       string            `json:"cluster_token,omitempty" yaml:"cluster_token,omitempty"`
	MemberConfig       []MemberConfigKey `json:"member_config,omitempty" yaml:"member_config,omitempty"`
}

// MemberConfigKey is one node-specific key a joining member supplies.
type MemberConfigKey struct {
	Entity      string `json:"entity" yaml:"entity"`
	Name        string `json:"name" yaml:"name"`
	Key         string `json:"key" yaml:"key"`
	Value       string `json:"value" yaml:"value"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// ClusterMember is one entry of GET /1.0/cluster/members, shaped like LXD's.
type ClusterMember struct {
	ServerName    string    `json:"server_name" yaml:"server_name"`
	URL           string    `json:"url" yaml:"url"`
	Database      bool      `json:"database" yaml:"database"`
	Roles         []string  `json:"roles" yaml:"roles"`
	Status        string    `json:"status" yaml:"status"`
	Message       string    `json:"message" yaml:"message"`
	Version       string    `json:"version" yaml:"version"`
	SchemaVersion int       `json:"schema_version" yaml:"schema_version"`
	APILevel      int       `json:"api_level" yaml:"api_level"`
	LastHeartbeat time.Time `json:"last_heartbeat" yaml:"last_heartbeat"`
	// Architecture is the member's kernel architecture (uname -m), recorded by the member.
	Architecture string `json:"architecture" yaml:"architecture"`
	// FailureDomain and Description are set with `cluster edit` (ClusterMemberPut).
	FailureDomain string `json:"failure_domain" yaml:"failure_domain"`
	Description   string `json:"description" yaml:"description"`
}

// ClusterMemberPut is the editable part of a member (PUT /1.0/cluster/members/NAME), as
// LXD's: what `cluster edit` reads. An empty failure domain is "default".
type ClusterMemberPut struct {
	Description   string `json:"description" yaml:"description"`
	FailureDomain string `json:"failure_domain" yaml:"failure_domain"`
}

// ClusterMemberTokenPost is the body of POST /1.0/cluster/members (create a join token).
type ClusterMemberTokenPost struct {
	ServerName string `json:"server_name" yaml:"server_name"`
}

// ClusterMemberToken describes an outstanding join token. The secret itself is only
// returned once, inside Token, when the token is created.
type ClusterMemberToken struct {
	ServerName string    `json:"server_name" yaml:"server_name"`
	ExpiresAt  time.Time `json:"expires_at" yaml:"expires_at"`
	Token      string    `json:"token,omitempty" yaml:"token,omitempty"`
}

// CertificatesPost adds a trusted client certificate (POST /1.0/certificates).
type CertificatesPost struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Certificate string `json:"certificate" yaml:"certificate"`
	Password    string `json:"password,omitempty" yaml:"password,omitempty"`
}

// Certificate is a trusted certificate as listed by GET /1.0/certificates.
type Certificate struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Fingerprint string `json:"fingerprint" yaml:"fingerprint"`
	Certificate string `json:"certificate" yaml:"certificate"`
}

// InitPost is the body of POST /internal/init on the local socket: `nodeagent init`.
type InitPost struct {
	Preseed Preseed `json:"preseed"`
	// Wipe allows joining with an initialised agent directory, whose data is lost.
	Wipe bool `json:"wipe,omitempty"`
}

// DatabaseMember is one line of `nodeagent cluster list-database`.
type DatabaseMember struct {
	Name    string `json:"name" yaml:"name"`
	Address string `json:"address" yaml:"address"`
	Role    string `json:"role" yaml:"role"`
}

// DatabaseInfo is what `cluster list-database` prints: the raft members last known to this
// member, and its last applied raft index and term.
type DatabaseInfo struct {
	Members   []DatabaseMember `json:"members" yaml:"members"`
	LastIndex uint64           `json:"last_index" yaml:"last_index"`
	LastTerm  uint64           `json:"last_term" yaml:"last_term"`
}
