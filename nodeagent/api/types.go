// Package api holds the REST types of the nodeagent API and its Go client. orch and the
// agent's own CLI import it; it imports nothing else of the agent. Shapes follow LXD's /1.0
// API so that users of LXD recognise them.
package api

import (
	"errors"
	"fmt"
	"time"
)

// Member statuses, as LXD's ClusterMember.Status.
const (
	StatusOnline  = "Online"
	StatusOffline = "Offline"
	StatusBlocked = "Blocked"
	// StatusEvacuated is a member `cluster evacuate` emptied for maintenance.
	StatusEvacuated = "Evacuated"
)

// ClusterMemberStatePost is the body of POST /1.0/cluster/members/NAME/state (LXD's
// `lxc cluster evacuate` and `lxc cluster restore`).
type ClusterMemberStatePost struct {
	// Action is "evacuate" or "restore".
	Action string `json:"action" yaml:"action"`
	// Mode is LXD's evacuation mode; only "stop" (the default for local storage) is done.
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

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
	Public        bool              `json:"public" yaml:"public"`
	AuthMethods   []string          `json:"auth_methods" yaml:"auth_methods"`
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
	// Certificate is the server certificate (PEM): the cluster's once clustered.
	Certificate string `json:"certificate" yaml:"certificate"`
	// Server is the server's kind ("orch"; LXD says "lxd").
	Server string `json:"server" yaml:"server"`
	// ServerPid is the daemon's process ID.
	ServerPid int `json:"server_pid" yaml:"server_pid"`
	// Project is the project the answer is about (always "default").
	Project string `json:"project" yaml:"project"`
	// Driver is the instance driver ("lxc").
	Driver string `json:"driver" yaml:"driver"`
	// Architectures are the instance architectures the member runs (its kernel's).
	Architectures []string `json:"architectures" yaml:"architectures"`
	// Kernel, KernelArchitecture and KernelVersion are uname's sysname, machine and release.
	Kernel             string `json:"kernel" yaml:"kernel"`
	KernelArchitecture string `json:"kernel_architecture" yaml:"kernel_architecture"`
	KernelVersion      string `json:"kernel_version" yaml:"kernel_version"`
	// Initialised is false until `nodeagent init` has bootstrapped or joined this member.
	Initialised bool `json:"initialised" yaml:"initialised"`
	// Blocked is set when this member waits for others to be upgraded.
	Blocked bool `json:"blocked,omitempty" yaml:"blocked,omitempty"`
	// Message explains Blocked (on which members it waits) or an upgrade requirement.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
	// CutOff is set when a recovery elsewhere cut this member off (or the cluster removed
	// it): it runs, but opens no database until it is wiped and rejoined.
	CutOff *CutOff `json:"cut_off,omitempty" yaml:"cut_off,omitempty"`
}

// ErrDatabaseNotOpen is Environment.Ready's answer for an initialised member whose
// database is not open yet.
var ErrDatabaseNotOpen = errors.New("the member's database is not open yet")

// Ready reports whether the answering daemon is as ready as it will get: an initialised
// member once its database is open; one cut off by a recovery (or removed) answers but
// never opens its database until it is wiped and rejoined, so it counts as ready.
func (e Environment) Ready() error {
	if e.Initialised && !e.ServerClustered && e.CutOff == nil {
		return ErrDatabaseNotOpen
	}
	return nil
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

// ClusterJoinInfoPost asks a cluster member, before joining, which member-specific keys
// the joining member supplies (POST /internal/cluster/join-info; the answer is a Cluster
// whose MemberConfig lists them). It authenticates as the join will: the trust password or
// the join token's secret, which it does not consume.
type ClusterJoinInfoPost struct {
	ServerName  string `json:"server_name"`
	Password    string `json:"password,omitempty"`
	TokenSecret string `json:"token_secret,omitempty"`
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
	// Config holds member configuration keys, as LXD's (none are supported: always {},
	// never null, so that LXD's clients can set into it).
	Config map[string]string `json:"config" yaml:"config"`
	// Groups are the member's cluster groups ("default" when it was put in none).
	Groups []string `json:"groups" yaml:"groups"`
}

// ClusterGroup is LXD's cluster group (/1.0/cluster/groups/NAME): a named set of members
// that `launch --target @NAME` places instances on.
type ClusterGroup struct {
	Name        string   `json:"name" yaml:"name"`
	Description string   `json:"description" yaml:"description"`
	Members     []string `json:"members" yaml:"members"`
	// UsedBy is always empty (nothing but placement refers to a group).
	UsedBy []string `json:"used_by" yaml:"used_by"`
}

// ClusterGroupPut is the editable part of a cluster group.
type ClusterGroupPut struct {
	Description string   `json:"description" yaml:"description"`
	Members     []string `json:"members" yaml:"members"`
}

// ClusterGroupPost renames a cluster group.
type ClusterGroupPost struct {
	Name string `json:"name" yaml:"name"`
}

// ClusterMemberPut is the editable part of a member (PUT /1.0/cluster/members/NAME), as
// LXD's: what `cluster edit` reads. An empty failure domain is "default". Groups, when
// given, replace the member's cluster groups (each must exist). Roles and Config are
// accepted as LXD's clients send them back: database roles are the cluster's to assign
// (they are ignored), other roles and config keys are refused.
type ClusterMemberPut struct {
	Description   string            `json:"description" yaml:"description"`
	FailureDomain string            `json:"failure_domain" yaml:"failure_domain"`
	Roles         []string          `json:"roles,omitempty" yaml:"roles,omitempty"`
	Config        map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	Groups        []string          `json:"groups,omitempty" yaml:"groups,omitempty"`
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

// CertificatesPost adds a trusted client certificate (POST /1.0/certificates), as LXD's
// body: `lxc remote add --password` sends its own certificate with the trust password;
// `lxc config trust add` a certificate or, with Token, asks for a certificate-add token.
type CertificatesPost struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Certificate string `json:"certificate" yaml:"certificate"`
	// Restricted limits the certificate to Projects (LXD); only false is supported.
	Restricted bool `json:"restricted,omitempty" yaml:"restricted,omitempty"`
	// Projects a restricted certificate may use; empty or ["default"] only.
	Projects []string `json:"projects,omitempty" yaml:"projects,omitempty"`
	Password string   `json:"password,omitempty" yaml:"password,omitempty"`
	// Token asks for a certificate-add token instead of adding a certificate.
	Token bool `json:"token,omitempty" yaml:"token,omitempty"`
}

// CertificatePut is the editable part of a trusted certificate (PUT and PATCH
// /1.0/certificates/FINGERPRINT), as LXD's.
type CertificatePut struct {
	Name        string   `json:"name" yaml:"name"`
	Type        string   `json:"type" yaml:"type"`
	Restricted  bool     `json:"restricted" yaml:"restricted"`
	Projects    []string `json:"projects" yaml:"projects"`
	Certificate string   `json:"certificate" yaml:"certificate"`
}

// Certificate is a trusted certificate (GET /1.0/certificates/FINGERPRINT and the objects
// of GET /1.0/certificates?recursion=1), as LXD's.
type Certificate struct {
	Name        string   `json:"name" yaml:"name"`
	Type        string   `json:"type" yaml:"type"`
	Restricted  bool     `json:"restricted" yaml:"restricted"`
	Projects    []string `json:"projects" yaml:"projects"`
	Certificate string   `json:"certificate" yaml:"certificate"`
	Fingerprint string   `json:"fingerprint" yaml:"fingerprint"`
}

// Writable is the editable part of c.
func (c Certificate) Writable() CertificatePut {
	return CertificatePut{Name: c.Name, Type: c.Type, Restricted: c.Restricted, Projects: c.Projects, Certificate: c.Certificate}
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
// member, the last entry of its raft log and the last entry applied to its database, its
// cluster epoch, and whether it was cut off by a recovery.
type DatabaseInfo struct {
	// Member is this member's name.
	Member  string           `json:"member,omitempty" yaml:"member,omitempty"`
	Members []DatabaseMember `json:"members" yaml:"members"`
	// LastIndex and LastTerm are the last entry applied to the database (known committed).
	LastIndex uint64 `json:"last_index" yaml:"last_index"`
	LastTerm  uint64 `json:"last_term" yaml:"last_term"`
	// LastLogIndex and LastLogTerm are the last entry of the raft log itself: it may hold
	// entries (acknowledged writes among them) this member has not yet applied. Recovery
	// picks the member with the highest (LastLogTerm, LastLogIndex).
	LastLogIndex uint64 `json:"last_log_index" yaml:"last_log_index"`
	LastLogTerm  uint64 `json:"last_log_term" yaml:"last_log_term"`
	// Running is true when the answer came from the running daemon.
	Running bool `json:"running" yaml:"running"`
	// Epoch is the cluster epoch this member belongs to.
	Epoch Epoch `json:"epoch" yaml:"epoch"`
	// CutOff is set when a recovery elsewhere cut this member off.
	CutOff *CutOff `json:"cut_off,omitempty" yaml:"cut_off,omitempty"`
	// Alive (with --probe) lists the other members that answered as running cluster members.
	Alive []string `json:"alive,omitempty" yaml:"alive,omitempty"`
}

// Epoch is a cluster epoch: 0 from the bootstrap, then one more at every recovery from
// quorum loss, with the member that recovered and when. Every member-to-member
// connection carries it, and members of an older epoch are refused.
type Epoch struct {
	Number uint64    `json:"number" yaml:"number"`
	Member string    `json:"member,omitempty" yaml:"member,omitempty"`
	Time   time.Time `json:"time,omitempty" yaml:"time,omitempty"`
}

// Same reports whether e and o are the same epoch (the same recovery).
func (e Epoch) Same(o Epoch) bool {
	return e.Number == o.Number && e.Member == o.Member && e.Time.Equal(o.Time)
}

// String describes the epoch for messages.
func (e Epoch) String() string {
	if e.Number == 0 {
		return "epoch 0 (no recovery)"
	}
	return fmt.Sprintf("epoch %d (recovery on %s at %s)", e.Number, e.Member, e.Time.UTC().Format(time.RFC3339))
}

// CutOff says why this member no longer belongs to the cluster.
type CutOff struct {
	// Epoch is the newer epoch that cut this member off; zero when Removed.
	Epoch Epoch `json:"epoch" yaml:"epoch"`
	// Removed is true when the cluster removed this member (`cluster remove --force`).
	Removed bool `json:"removed,omitempty" yaml:"removed,omitempty"`
	// By names the member that said so.
	By string `json:"by,omitempty" yaml:"by,omitempty"`
}

// Error is the message every refusal of a cut-off member carries.
func (c CutOff) Error() string {
	if c.Removed {
		return fmt.Sprintf("this member was removed from the cluster (said %s); wipe and rejoin it (e.g. `orch recover --rejoin`)", c.By)
	}
	return fmt.Sprintf("this member was cut off by a recovery on %s at %s; wipe and rejoin it (e.g. `orch recover --rejoin`)",
		c.Epoch.Member, c.Epoch.Time.UTC().Format(time.RFC3339))
}

// PeerState is what a member answers on GET /internal/cluster/state to another member:
// whether it runs as a cluster member, in which epoch.
type PeerState struct {
	Member string  `json:"member"`
	Epoch  Epoch   `json:"epoch"`
	CutOff *CutOff `json:"cut_off,omitempty"`
	// Leader is the raft leader this member knows of, "" when none.
	Leader string `json:"leader,omitempty"`
}

// Project is an LXD project (GET /1.0/projects/NAME): an orch cluster has only "default".
type Project struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description" yaml:"description"`
	Config      map[string]string `json:"config" yaml:"config"`
	UsedBy      []string          `json:"used_by" yaml:"used_by"`
}
