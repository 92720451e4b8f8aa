package hostmods

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"orch/internal/atomicfile"
	"orch/playbooks"
)

// statFormat is what stat(1) prints for the stat module, one key=value a line.
const statFormat = `mode=%a\nuid=%u\ngid=%g\npw_name=%U\ngr_name=%G\nsize=%s\ninode=%i\ndev=%d\nnlink=%h\n` +
	`atime=%X\nmtime=%Y\nctime=%Z\ntype=%F\nblocks=%b\nblock_size=%B\n`

// checksumTools maps Ansible's checksum_algorithm to the coreutils tool computing it.
var checksumTools = map[string]string{"sha1": "sha1sum", "md5": "md5sum", "sha224": "sha224sum",
	"sha256": "sha256sum", "sha384": "sha384sum", "sha512": "sha512sum"}

// stat reports on a path in one command: the `stat` dictionary of Ansible's module.
func statModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("stat", a, "path", "dest", "name", "follow", "get_checksum", "checksum_algorithm",
		"checksum", "checksum_algo", "get_md5", "get_mime", "get_attributes", "mime", "mime_type", "mime-type", "attributes", "attr"); err != nil {
		return playbooks.Result{}, err
	}
	path, _ := strArg(a, "", "path", "dest", "name")
	if path == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"path\": required", playbooks.ErrArgs)
	}
	follow, err := a.Bool("follow", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	getSum, err := a.Bool("get_checksum", true)
	if err != nil {
		return playbooks.Result{}, err
	}
	algo, _ := strArg(a, "sha1", "checksum_algorithm", "checksum", "checksum_algo")
	tool, ok := checksumTools[algo]
	if !ok {
		return playbooks.Result{}, choice("checksum_algorithm", algo, "md5", "sha1", "sha224", "sha256", "sha384", "sha512")
	}
	st, err := statPath(ctx, t, path, follow, map[bool]string{true: tool}[getSum])
	if err != nil {
		return playbooks.Result{}, err
	}
	return playbooks.Result{Data: map[string]any{"stat": st}}, nil
}

// statPath returns Ansible's stat dictionary for path; sumTool, if set, adds checksum.
func statPath(ctx context.Context, t *playbooks.TaskContext, path string, follow bool, sumTool string) (map[string]any, error) {
	l := ""
	if follow {
		l = "-L "
	}
	script := "p=" + q(path) + "\nif [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then echo exists=false; exit 0; fi\n" +
		"stat " + l + "--printf '" + statFormat + "' -- \"$p\" || exit 1\n" +
		"[ -L \"$p\" ] && printf 'lnk_source=%s\\nlnk_target=%s\\n' \"$(readlink -f -- \"$p\")\" \"$(readlink -- \"$p\")\"\n" +
		"[ -r \"$p\" ] && echo readable=1; [ -w \"$p\" ] && echo writeable=1; [ -x \"$p\" ] && echo executable=1\n"
	if sumTool != "" {
		script += "if [ -f \"$p\" ] && [ -r \"$p\" ]; then echo \"checksum=$(" + sumTool + " < \"$p\" | cut -d' ' -f1)\"; fi\n"
	}
	o, err := runOK(ctx, t, "stat "+path, script, nil)
	if err != nil {
		return nil, err
	}
	return statDict(path, fields(o.stdout)), nil
}

// statDict turns stat's fields into the module's keys and types.
func statDict(path string, f map[string]string) map[string]any {
	if f["exists"] == "false" {
		return map[string]any{"exists": false}
	}
	st := map[string]any{"exists": true, "path": path}
	for _, k := range []string{"uid", "gid", "size", "inode", "dev", "nlink", "atime", "mtime", "ctime", "blocks", "block_size"} {
		n, _ := strconv.ParseInt(f[k], 10, 64)
		st[k] = n
	}
	m, _ := strconv.ParseUint(f["mode"], 8, 32)
	st["mode"] = fmt.Sprintf("%04o", m)
	st["pw_name"], st["gr_name"] = f["pw_name"], f["gr_name"]
	kind := f["type"]
	st["isdir"], st["islnk"] = kind == "directory", kind == "symbolic link"
	st["isreg"] = strings.HasPrefix(kind, "regular")
	st["isblk"], st["ischr"] = kind == "block special file", kind == "character special file"
	st["isfifo"], st["issock"] = kind == "fifo", kind == "socket"
	for _, k := range []string{"readable", "writeable", "executable"} {
		st[k] = f[k] == "1"
	}
	perm := os.FileMode(m)
	st["xusr"], st["xgrp"], st["xoth"] = perm&0o100 != 0, perm&0o010 != 0, perm&0o001 != 0
	st["rusr"], st["rgrp"], st["roth"] = perm&0o400 != 0, perm&0o040 != 0, perm&0o004 != 0
	st["wusr"], st["wgrp"], st["woth"] = perm&0o200 != 0, perm&0o020 != 0, perm&0o002 != 0
	st["isuid"], st["isgid"] = m&0o4000 != 0, m&0o2000 != 0
	if st["islnk"] == true {
		st["lnk_source"], st["lnk_target"] = f["lnk_source"], f["lnk_target"]
	}
	if c, ok := f["checksum"]; ok {
		st["checksum"] = c
	}
	return st
}

// slurp returns a remote file's content, base64-encoded, as Ansible's slurp does.
func slurpModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("slurp", t.Args, "src", "path"); err != nil {
		return playbooks.Result{}, err
	}
	src, _ := strArg(t.Args, "", "src", "path")
	if src == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"src\": required", playbooks.ErrArgs)
	}
	o, err := run(ctx, t, "cat -- "+q(src), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: "file not found: " + src + ": " + strings.TrimSpace(o.stderr)}, nil
	}
	return playbooks.Result{Data: map[string]any{"content": base64.StdEncoding.EncodeToString([]byte(o.stdout)),
		"encoding": "base64", "source": src}}, nil
}

// fetch copies a remote file to the controller: dest/<inventory_hostname>/<src>, or dest
// itself with flat=yes (dest ending in / gets the file's base name). Compared by sha1 first,
// so an unchanged file is not transferred. dest is replaced atomically (hosts fetching
// to one flat dest at once no longer interleave their writes) and keeps its mode, else
// gets 0644.
func fetchModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("fetch", a, "src", "dest", "flat", "fail_on_missing", "validate_checksum", "validate_md5"); err != nil {
		return playbooks.Result{}, err
	}
	src, err := a.Required("src")
	if err != nil {
		return playbooks.Result{}, err
	}
	destArg, err := a.Required("dest")
	if err != nil {
		return playbooks.Result{}, err
	}
	flat, _ := a.Bool("flat", false)
	failMissing, _ := a.Bool("fail_on_missing", true)
	dest := fetchDest(t, src, destArg, flat)
	o, err := runOK(ctx, t, "checksum of "+src, "p="+q(src)+"\nif [ -f \"$p\" ]; then sha1sum < \"$p\" | cut -d' ' -f1; md5sum < \"$p\" | cut -d' ' -f1; elif [ -d \"$p\" ]; then echo dir; else echo absent; fi", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	sums := strings.Fields(o.stdout)
	data := map[string]any{"dest": dest, "file": src}
	if len(sums) != 2 {
		msg := "the remote file does not exist, not transferring, ignored"
		if len(sums) == 1 && sums[0] == "dir" {
			msg = "remote file is a directory, fetch cannot work on directories"
		}
		return playbooks.Result{Failed: failMissing || sums[0] == "dir", Msg: msg, Data: data}, nil
	}
	data["checksum"], data["remote_checksum"], data["remote_md5sum"] = sums[0], sums[0], sums[1]
	if localSHA1(dest) == sums[0] {
		return playbooks.Result{Data: data}, nil
	}
	err = t.Change("fetch "+src+" to "+dest, func() error {
		out, err := runOK(ctx, t, "reading "+src, "cat -- "+q(src), nil)
		if err != nil {
			return err
		}
		if got := sha1Hex([]byte(out.stdout)); got != sums[0] {
			return fmt.Errorf("checksum mismatch fetching %s: %s, expected %s", src, got, sums[0])
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		data["md5sum"] = md5Hex([]byte(out.stdout))
		return atomicfile.Write(dest, []byte(out.stdout), atomicfile.ExistingPerm(dest, 0o644))
	})
	return playbooks.Result{Data: data}, err
}

// fetchDest is where fetch writes src on the controller.
func fetchDest(t *playbooks.TaskContext, src, dest string, flat bool) string {
	dest = t.LocalPath(dest)
	if flat {
		if strings.HasSuffix(dest, "/") {
			return dest + filepath.Base(src)
		}
		return dest
	}
	return filepath.Join(dest, t.Host, src)
}
