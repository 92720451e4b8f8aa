package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
	"orch/output"
)

// ClusterListDatabaseCmd prints the database members and this member's last raft index
// and term, from the daemon when it runs and from the node-local database otherwise.
type ClusterListDatabaseCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run prints the database members.
func (c *ClusterListDatabaseCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	info, err := databaseInfo(g)
	if err != nil {
		return err
	}
	if err := output.Render(g.Stdout, c.Format, info, func() ([]string, [][]string) {
		rows := [][]string{}
		for _, m := range info.Members {
			rows = append(rows, []string{m.Name, m.Address, m.Role})
		}
		return []string{"NAME", "ADDRESS", "ROLE"}, rows
	}); err != nil {
		return err
	}
	if c.Format == output.FormatTable || c.Format == "" {
		fmt.Fprintf(g.Stdout, "Last raft index: %d (term %d)\n", info.LastIndex, info.LastTerm)
	}
	return nil
}

func databaseInfo(g *Globals) (*api.DatabaseInfo, error) {
	if daemonRunning(g) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if info, err := g.client().Database(ctx); err == nil {
			return info, nil
		}
	}
	ldb, err := openLocal(g.Dir)
	if err != nil {
		return nil, err
	}
	defer ldb.Close()
	info := &api.DatabaseInfo{}
	if info.Members, err = ldb.RaftNodes(); err != nil {
		return nil, err
	}
	if info.Members == nil {
		info.Members = []api.DatabaseMember{}
	}
	info.LastIndex, info.LastTerm, err = ldb.LastIndexTerm()
	return info, err
}

func openLocal(dir string) (*localdb.DB, error) {
	path := filepath.Join(dir, "local.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no agent in %s: %w", dir, err)
	}
	return localdb.Open(path)
}

// daemonRunning reports whether a daemon listens on the agent directory's socket. It only
// connects: a daemon that lost quorum may not answer requests in time, yet it holds the
// database files and must not have them rewritten under it.
func daemonRunning(g *Globals) bool {
	c, err := net.DialTimeout("unix", daemon.SocketPath(g.Dir), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ClusterRecoverCmd rewrites the raft configuration so this member is the only voter.
type ClusterRecoverCmd struct {
	Yes bool `help:"Do not ask for confirmation."`
}

// Run refuses while the daemon runs; backs the database up, then recovers.
func (c *ClusterRecoverCmd) Run(g *Globals) error {
	if daemonRunning(g) {
		return fmt.Errorf("%w in %s: stop it first", daemon.ErrRunning, g.Dir)
	}
	ldb, err := openLocal(g.Dir)
	if err != nil {
		return err
	}
	defer ldb.Close()
	name, _ := ldb.Get(localdb.KeyMemberName)
	addr, _ := ldb.Get("cluster.https_address")
	if name == "" || addr == "" {
		return fmt.Errorf("%s holds no cluster member", g.Dir)
	}
	if !c.Yes && !confirm(g, fmt.Sprintf("Recover %s as the only database member? Other members must be gone for good. (yes/no) [default=no]: ", name)) {
		return errors.New("aborted: nothing changed")
	}
	dbDir := filepath.Join(g.Dir, "database")
	backup := dbDir + ".backup-" + time.Now().UTC().Format("20060102-150405")
	if err := copyTree(dbDir, backup); err != nil {
		return fmt.Errorf("backing up %s: %w", dbDir, err)
	}
	if err := store.RecoverSingleVoter(store.Config{Dir: dbDir, ID: name, Address: addr}); err != nil {
		return err
	}
	if err := ldb.SetRaftNodes([]api.DatabaseMember{{Name: name, Address: addr, Role: "voter"}}); err != nil {
		return err
	}
	if err := ldb.Set(map[string]string{localdb.KeyRecovered: "1"}); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Recovered: %s is now the only database member (backup in %s).\n"+
		"Start the daemon, then remove the lost members with `nodeagent cluster remove --force NAME`.\n", name, backup)
	return nil
}

// copyTree copies a directory of regular files (the database) to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if de.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !de.Type().IsRegular() {
			return nil
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
