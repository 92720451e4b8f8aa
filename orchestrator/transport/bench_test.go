package transport

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"orch/orchestrator/transport/sshdtest"
)

// benchFile is the file the push benchmarks send: $ORCH_BENCH_FILE, else the repo's
// bin/nodeagent, else the Go toolchain's compile binary (a ~25 MB Go executable).
func benchFile(b *testing.B) (string, int64) {
	b.Helper()
	candidates := []string{os.Getenv("ORCH_BENCH_FILE"), "../../bin/nodeagent",
		filepath.Join(runtime.GOROOT(), "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH, "compile")}
	for _, p := range candidates {
		if st, err := os.Stat(p); p != "" && err == nil {
			return p, st.Size()
		}
	}
	b.Skip("no file to push: set ORCH_BENCH_FILE or run make build")
	return "", 0
}

// benchHosts starts n sshds sharing one user key and one known_hosts file.
func benchHosts(b *testing.B, n int) (cfgs []Config, srvs []*sshdtest.Server, key sshdtest.UserKey, knownHosts string) {
	b.Helper()
	key = sshdtest.NewUserKey(b)
	knownHosts = filepath.Join(b.TempDir(), "known_hosts")
	var lines []string
	for i := range n {
		srv := sshdtest.Start(b, sshdtest.Options{IP: "127.0.0." + strconv.Itoa(100+i), AuthorizedKeys: []ssh.PublicKey{key.Public}})
		srvs = append(srvs, srv)
		lines = append(lines, srv.KnownHostsLine("ed25519"))
		cfgs = append(cfgs, Config{Name: fmt.Sprintf("h%02d", i), Host: srv.IP, Port: srv.Port, User: loginUser(b),
			KeyFiles: []string{key.Path}, AgentSocket: AgentNone, KnownHostsFile: knownHosts})
	}
	sshdtest.WriteKnownHosts(b, knownHosts, lines...)
	return cfgs, srvs, key, knownHosts
}

// BenchmarkPush pushes one binary to N hosts at once (ORCH_BENCH_HOSTS, default 30) with
// each method, and with OpenSSH's scp for comparison. Run with -benchtime 1x.
func BenchmarkPush(b *testing.B) {
	n := 30
	if v, err := strconv.Atoi(os.Getenv("ORCH_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	file, size := benchFile(b)
	cfgs, srvs, key, kh := benchHosts(b, n)
	b.Logf("pushing %s (%d bytes) to %d hosts", file, size, n)
	variants := []struct {
		name   string
		method PushMethod
		opts   []sftp.ClientOption
	}{
		{"stream", PushStream, nil},
		{"stream-gzip", PushGzip, nil},
		{"stream-zstd", PushZstd, nil},
		{"sftp-concurrent-255k", PushSFTP, sftpOptions},
		{"sftp-concurrent-32k", PushSFTP, []sftp.ClientOption{sftp.UseConcurrentWrites(true)}},
		{"sftp-plain", PushSFTP, []sftp.ClientOption{}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			conns := dialAll(b, cfgs, v.method, v.opts)
			benchLoop(b, srvs, size, func(dir string) error {
				errs := ForEach(context.Background(), conns, 0, func(ctx context.Context, c *Conn) error {
					_, err := c.Push(ctx, file, filepath.Join(dir, c.Name(), "nodeagent"), 0o755)
					return err
				})
				return firstErr(errs)
			})
		})
	}
	b.Run("stream-unchanged", func(b *testing.B) {
		conns := dialAll(b, cfgs, PushStream, nil)
		dir, err := os.MkdirTemp("", "transport-bench-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
		pushAll := func(ctx context.Context, c *Conn) error {
			_, err := c.Push(ctx, file, filepath.Join(dir, c.Name(), "nodeagent"), 0o755)
			return err
		}
		if err := firstErr(ForEach(context.Background(), conns, 0, pushAll)); err != nil {
			b.Fatal(err)
		}
		benchLoop(b, srvs, size, func(string) error {
			return firstErr(ForEach(context.Background(), conns, 0, pushAll))
		})
	})
	for _, cipher := range []string{"default", "aes128-gcm@openssh.com"} {
		b.Run("openssh-scp-"+cipher, func(b *testing.B) {
			benchLoop(b, srvs, size, func(dir string) error {
				return firstErr(ForEach(context.Background(), cfgs, 0, func(ctx context.Context, cfg Config) error {
					return scp(ctx, cfg, key.Path, kh, cipher, file, filepath.Join(dir, cfg.Name+"-nodeagent"))
				}))
			})
		})
	}
}

// benchLoop times b.N rounds of push into a fresh remote directory each, and reports
// the CPU seconds spent per round by this process, its children (scp) and the sshds:
// on a shared 2-core machine CPU, not wall time, is what limits a 30-host push.
func benchLoop(b *testing.B, srvs []*sshdtest.Server, size int64, push func(dir string) error) {
	b.SetBytes(size * int64(len(srvs)))
	var client, server time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "transport-bench-")
		if err != nil {
			b.Fatal(err)
		}
		c0, s0 := clientCPU(), serverCPU(srvs)
		b.StartTimer()
		err = push(dir)
		b.StopTimer()
		client += clientCPU() - c0
		server += serverCPU(srvs) - s0
		os.RemoveAll(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(client.Seconds()/float64(b.N), "client-cpu-s/op")
	b.ReportMetric(server.Seconds()/float64(b.N), "server-cpu-s/op")
}

// clientCPU is the CPU time of this process plus its reaped children.
func clientCPU() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// serverCPU sums the sshds' CPU time.
func serverCPU(srvs []*sshdtest.Server) time.Duration {
	var d time.Duration
	for _, s := range srvs {
		d += s.CPUTime()
	}
	return d
}

// dialAll connects to every host with a shared, cold FileCache.
func dialAll(b *testing.B, cfgs []Config, m PushMethod, opts []sftp.ClientOption) []*Conn {
	b.Helper()
	files := NewFileCache()
	var conns []*Conn
	for _, cfg := range cfgs {
		cfg.PushMethod, cfg.Files = m, files
		c := dial(b, cfg)
		if opts != nil {
			c.sftpOpts = opts
		}
		conns = append(conns, c)
	}
	return conns
}

// scp copies file with OpenSSH's scp.
func scp(ctx context.Context, cfg Config, key, kh, cipher, file, remote string) error {
	args := []string{"-q", "-B", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-P", strconv.Itoa(cfg.Port)}
	if cipher != "default" {
		args = append(args, "-c", cipher)
	}
	args = append(args, file, cfg.User+"@"+cfg.Host+":"+remote)
	out, err := exec.CommandContext(ctx, "scp", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("scp to %s: %v: %s", cfg.Name, err, out)
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkGzipLevel compresses the benchmark file at several levels, reporting the
// compressed size as a ratio of the original.
func BenchmarkGzipLevel(b *testing.B) {
	file, size := benchFile(b)
	for _, level := range []int{gzip.BestSpeed, 3, gzip.DefaultCompression} {
		b.Run("level-"+strconv.Itoa(level), func(b *testing.B) {
			b.SetBytes(size)
			var cw countWriter
			for i := 0; i < b.N; i++ {
				cw = 0
				zw, _ := gzip.NewWriterLevel(&cw, level)
				f, _ := os.Open(file)
				io.Copy(zw, f)
				f.Close()
				zw.Close()
			}
			b.ReportMetric(float64(cw)/float64(size), "ratio")
		})
	}
}

// countWriter counts bytes written.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
