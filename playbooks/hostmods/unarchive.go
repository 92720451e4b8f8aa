package hostmods

import (
	"context"
	"fmt"
	"path"
	"strings"

	"orch/playbooks"
)

// unarchive unpacks a tar (any compression GNU tar reads) or zip archive into dest. The
// archive is the controller's src pushed to the host, or remote_src. It is unpacked into a
// temporary directory first and compared with dest file by file, so a second run changes
// nothing and --check tells what would change.
func unarchiveModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("unarchive", a, "src", "dest", "remote_src", "copy", "creates", "list_files",
		"extra_opts", "exclude", "include", "keep_newer", "mode", "owner", "group", "validate_certs", "decrypt",
		"io_buffer_size", "unsafe_writes", "attributes"); err != nil {
		return playbooks.Result{}, err
	}
	src, err := a.Required("src")
	if err != nil {
		return playbooks.Result{}, err
	}
	dest, err := a.Required("dest")
	if err != nil {
		return playbooks.Result{}, err
	}
	remoteSrc, _ := a.Bool("remote_src", false)
	if a.Has("copy") {
		cp, _ := a.Bool("copy", true)
		remoteSrc = !cp
	}
	data := map[string]any{"src": src, "dest": dest, "handler": archiveHandler(src)}
	if creates, _ := a.String("creates", ""); creates != "" {
		o, err := run(ctx, t, "test -e "+q(creates), nil)
		if err != nil {
			return playbooks.Result{}, err
		}
		if o.rc == 0 {
			return playbooks.Result{Skipped: true, Msg: "skipped, since " + creates + " exists", Data: data}, nil
		}
	}
	archive := src
	if !remoteSrc && !strings.Contains(src, "://") {
		if archive, err = pushTemp(ctx, t, t.LocalPath(src), path.Base(src)); err != nil {
			return playbooks.Result{}, err
		}
		defer run(context.WithoutCancel(ctx), t, "rm -rf -- "+q(path.Dir(archive)), nil)
	}
	u := unarchive{archive: archive, dest: dest, url: strings.Contains(src, "://")}
	if u.attrs, err = fileAttrsArgs(a); err != nil {
		return playbooks.Result{}, err
	}
	u.extra, _ = listArg(a, "extra_opts")
	if u.exclude, err = listArg(a, "exclude"); err != nil {
		return playbooks.Result{}, err
	}
	o, err := run(ctx, t, u.script(false), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Failed to unpack %s into %s: %s", src, dest, lastLines(strings.TrimSpace(o.stderr), 5)), Data: data}, nil
	}
	files := strings.Split(strings.TrimSpace(fields(o.stdout)["files"]), "|")
	if list, _ := a.Bool("list_files", false); list {
		data["files"] = toAny(files)
	}
	if fields(o.stdout)["differs"] != "1" {
		return playbooks.Result{Data: data}, nil
	}
	return playbooks.Result{Data: data}, t.Change("unpack "+src+" into "+dest, func() error {
		_, err := runOK(ctx, t, "unpacking "+src, u.script(true), nil)
		return err
	})
}

func toAny(l []string) []any {
	out := make([]any, 0, len(l))
	for _, s := range l {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// archiveHandler is the name Ansible gives the archive's kind.
func archiveHandler(src string) string {
	if strings.HasSuffix(src, ".zip") {
		return "ZipArchive"
	}
	return "TgzArchive"
}

// unarchive is one unpacking.
type unarchive struct {
	archive, dest  string
	url            bool
	attrs          fileAttrs
	extra, exclude []string
}

// script unpacks into a temporary directory, lists the archive's files, and reports
// whether any differs from dest (content, or missing); with apply it copies them over.
func (u unarchive) script(apply bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "export LC_ALL=C\na=%s\ndest=%s\n", q(u.archive), q(u.dest))
	b.WriteString("[ -d \"$dest\" ] || { echo \"dest $dest must be an existing dir\" >&2; exit 2; }\n")
	b.WriteString("t=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$t\"' EXIT\n")
	if u.url {
		b.WriteString("a0=$a; a=\"$t.archive\"; trap 'rm -rf \"$t\" \"$a\"' EXIT; " + downloadCmd(u.archive, "$a") + " || exit 4\n")
		b.WriteString("case \"$a0\" in *.zip) z=1;; esac\n")
	} else {
		b.WriteString("[ -f \"$a\" ] || { echo \"Source '$a' does not exist\" >&2; exit 2; }\ncase \"$a\" in *.zip) z=1;; esac\n")
	}
	var excl []string
	for _, e := range u.exclude {
		excl = append(excl, q("--exclude="+e))
	}
	extra := quoteAll(u.extra)
	fmt.Fprintf(&b, "if [ -n \"$z\" ]; then unzip -q -o %s \"$a\" -d \"$t\" || exit 1\nelse tar -x -f \"$a\" -C \"$t\" %s %s || exit 1; fi\n", extra, strings.Join(excl, " "), extra)
	b.WriteString(`cd "$t" || exit 1
printf 'files='; find . -mindepth 1 | sed 's|^\./||' | tr '\n' '|'; echo
differs=$(find . -mindepth 1 | while IFS= read -r f; do
  if [ -L "$f" ]; then [ "$(readlink "$f")" = "$(readlink "$dest/$f" 2>/dev/null)" ] || echo 1
  elif [ -d "$f" ]; then [ -d "$dest/$f" ] || echo 1
  else cmp -s "$f" "$dest/$f" || echo 1; fi
done | head -n 1)
echo "differs=$differs"
`)
	if apply {
		b.WriteString("cp -a . \"$dest\"/ || exit 1\n")
		if u.attrs != (fileAttrs{}) {
			b.WriteString("find . -mindepth 1 | while IFS= read -r f; do p=\"$dest/$f\"\n" + u.attrs.script("p") + "done\n")
		}
	}
	return b.String()
}

// pushTemp copies a controller file into a fresh temporary directory on the host (the
// caller removes the directory).
func pushTemp(ctx context.Context, t *playbooks.TaskContext, local, base string) (string, error) {
	o, err := runOK(ctx, t, "making a temporary directory", "mktemp -d", nil)
	if err != nil {
		return "", err
	}
	remote := strings.TrimSpace(o.stdout) + "/" + base
	conn, err := t.Conn()
	if err != nil {
		return "", err
	}
	if _, err := conn.Push(ctx, local, remote, 0o600); err != nil {
		return "", fmt.Errorf("copying %s to the host: %w", local, err)
	}
	return remote, nil
}
