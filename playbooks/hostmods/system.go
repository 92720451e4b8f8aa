package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// timezoneProbe prints the mode (systemd when it is PID 1 and timedatectl exists), the
// current zone and RTC setting, and whether the zone asked for exists in zoneinfo.
const timezoneProbe = `z=%s
if [ -d /run/systemd/system ] && command -v timedatectl >/dev/null 2>&1; then
  echo mode=systemd; echo "name=$(timedatectl show -p Timezone --value)"; echo "rtc=$(timedatectl show -p LocalRTC --value)"
else
  echo mode=files
  if [ -f /etc/timezone ]; then read -r n < /etc/timezone; else n=$(readlink /etc/localtime); n=${n#*zoneinfo/}; fi
  echo "name=$n"; [ -f /etc/adjtime ] && echo "adjtime=$(sed -n 3p /etc/adjtime)"
fi
if [ -z "$z" ] || [ -f "/usr/share/zoneinfo/$z" ]; then echo known=1; fi
`

// timezone sets the system time zone (and the RTC's UTC/local setting): timedatectl where
// systemd runs, else /etc/localtime's link and /etc/timezone, as Ansible's timezone does;
// diff before/after as Ansible returns it.
func timezoneModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("timezone", a, "name", "hwclock"); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := a.String("name", "")
	hw, _ := a.String("hwclock", "")
	if name == "" && hw == "" {
		return playbooks.Result{}, fmt.Errorf("%w: one of the following is required: name, hwclock", playbooks.ErrArgs)
	}
	hw = strings.ToUpper(hw)
	if hw != "" {
		if hw != "UTC" && hw != "LOCAL" {
			return playbooks.Result{}, choice("hwclock", hw, "local", "UTC")
		}
	}
	o, err := runOK(ctx, t, "reading the time zone", fmt.Sprintf(timezoneProbe, q(name)), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	if f["known"] != "1" {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("given timezone %q is not available", name)}, nil
	}
	curHW := "UTC"
	if f["rtc"] == "yes" || f["adjtime"] == "LOCAL" {
		curHW = "local"
	}
	before := map[string]any{"name": f["name"]}
	after := map[string]any{"name": f["name"]}
	var script []string
	if name != "" {
		after["name"] = name
		if name != f["name"] {
			script = append(script, timezoneSet(f["mode"], name))
		}
	}
	if hw != "" {
		want := map[string]string{"UTC": "UTC", "LOCAL": "local"}[hw]
		before["hwclock"], after["hwclock"] = curHW, want
		if want != curHW {
			script = append(script, hwclockSet(f["mode"], want))
		}
	}
	data := map[string]any{"diff": map[string]any{"before": before, "after": after}}
	if len(script) == 0 {
		return playbooks.Result{Data: data}, nil
	}
	err = t.Change(fmt.Sprintf("time zone %v -> %v", before, after), func() error {
		_, err := runOK(ctx, t, "setting the time zone", strings.Join(script, "\n"), nil)
		return err
	})
	return playbooks.Result{Data: data}, err
}

func timezoneSet(mode, name string) string {
	if mode == "systemd" {
		return "timedatectl set-timezone " + q(name)
	}
	return "ln -sfn " + q("/usr/share/zoneinfo/"+name) + " /etc/localtime && echo " + q(name) + " > /etc/timezone"
}

func hwclockSet(mode, want string) string {
	rtc := map[string]string{"UTC": "no", "local": "yes"}[want]
	if mode == "systemd" {
		return "timedatectl set-local-rtc " + rtc
	}
	line := map[string]string{"UTC": "UTC", "local": "LOCAL"}[want]
	return "[ -f /etc/adjtime ] || printf '0.0 0 0.0\\n0\\nUTC\\n' > /etc/adjtime; sed -i '3s/.*/" + line + "/' /etc/adjtime"
}

// getentSplit are the databases whose fields Ansible splits at colons.
var getentSplit = map[string]bool{"passwd": true, "shadow": true, "group": true, "gshadow": true}

// getent reads a name service database (one getent command) into
// ansible_facts.getent_<database>: key -> the record's other fields, as Ansible's getent.
func getentModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("getent", a, "database", "key", "split", "fail_key", "service"); err != nil {
		return playbooks.Result{}, err
	}
	db, err := a.Required("database")
	if err != nil {
		return playbooks.Result{}, err
	}
	key, _ := a.String("key", "")
	split, _ := a.String("split", "")
	if split == "" && getentSplit[db] {
		split = ":"
	}
	failKey, err := a.Bool("fail_key", true)
	if err != nil {
		return playbooks.Result{}, err
	}
	cmd := "getent"
	if s, _ := a.String("service", ""); s != "" {
		cmd += " -s " + q(s)
	}
	cmd += " " + q(db)
	if key != "" {
		cmd += " " + q(key)
	}
	o, err := run(ctx, t, cmd, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	records := map[string]any{}
	switch o.rc {
	case 0:
	case 1:
		return playbooks.Result{Failed: true, Msg: "Missing arguments, or database unknown."}, nil
	case 2:
		if failKey {
			return playbooks.Result{Failed: true, Msg: "One or more supplied key could not be found in the database."}, nil
		}
		records[key] = nil
		return getentResult(db, records, "One or more supplied key could not be found in the database."), nil
	case 3:
		return playbooks.Result{Failed: true, Msg: "Enumeration not supported on this database."}, nil
	default:
		return playbooks.Result{}, o.err(cmd)
	}
	for _, l := range strings.Split(strings.TrimRight(o.stdout, "\n"), "\n") {
		var rec []string
		if split == "" {
			rec = strings.Fields(l)
		} else {
			rec = strings.Split(l, split)
		}
		if len(rec) == 0 || rec[0] == "" {
			continue
		}
		if _, seen := records[rec[0]]; seen {
			continue // Ansible keeps the first record of a key
		}
		rest := make([]any, len(rec)-1)
		for i, s := range rec[1:] {
			rest[i] = s
		}
		records[rec[0]] = rest
	}
	return getentResult(db, records, ""), nil
}

func getentResult(db string, records map[string]any, msg string) playbooks.Result {
	return playbooks.Result{Msg: msg, Data: map[string]any{"ansible_facts": map[string]any{"getent_" + db: records}}}
}

// modprobe loads (present) or unloads (absent) a kernel module: /proc/modules and
// modules.builtin read in one command, `modprobe [-r] name params` when it differs.
func modprobeModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("modprobe", a, "name", "state", "params", "persistent"); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	params, _ := a.String("params", "")
	if p, _ := a.String("persistent", "disabled"); p != "disabled" {
		return playbooks.Result{}, fmt.Errorf("%w \"persistent\": only disabled is supported", playbooks.ErrArgs)
	}
	mod := strings.ReplaceAll(name, "-", "_")
	probe := "PATH=$PATH:/sbin:/usr/sbin; command -v modprobe >/dev/null || echo nomodprobe=1\n" +
		"m=" + q(mod) + "\nif grep -q \"^$m \" /proc/modules 2>/dev/null; then echo loaded=1\n" +
		"elif grep -Eq \"/$m\\.ko(\\.[a-z]+)?$\" /lib/modules/$(uname -r)/modules.builtin 2>/dev/null; then echo loaded=1; echo builtin=1; fi\n"
	o, err := runOK(ctx, t, "reading loaded modules", probe, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	data := map[string]any{"name": name, "params": params, "state": state}
	if f["nomodprobe"] == "1" {
		return playbooks.Result{Failed: true, Msg: `Failed to find required executable "modprobe"`, Data: data}, nil
	}
	loaded := f["loaded"] == "1"
	if loaded == (state == "present") {
		return playbooks.Result{Data: data}, nil
	}
	if state == "absent" && f["builtin"] == "1" {
		return playbooks.Result{Failed: true, Msg: name + " is built into the kernel and cannot be unloaded", Data: data}, nil
	}
	cmd := "PATH=$PATH:/sbin:/usr/sbin modprobe " + q(name)
	if state == "absent" {
		cmd = "PATH=$PATH:/sbin:/usr/sbin modprobe -r " + q(name)
	} else if params != "" {
		cmd += " " + params // params are module options split by the shell, as Ansible splits them
	}
	err = t.Change(cmd, func() error {
		o, err := run(ctx, t, cmd, nil)
		if err != nil {
			return err
		}
		if o.rc != 0 {
			return fmt.Errorf("%s: %w (rc %d): %s", cmd, ErrHost, o.rc, strings.TrimSpace(o.stderr+o.stdout))
		}
		return nil
	})
	return playbooks.Result{Data: data}, err
}

// localeName normalises a locale as `locale -a` prints it: en_US.UTF-8 -> en_US.utf8.
func localeName(n string) string {
	base, charset, ok := strings.Cut(n, ".")
	if !ok {
		return n
	}
	charset, mod, _ := strings.Cut(charset, "@")
	out := base + "." + strings.ReplaceAll(strings.ToLower(charset), "-", "")
	if mod != "" {
		out += "@" + mod
	}
	return out
}

// locale_gen makes a locale available (present) or removes it (absent) on Debian-like
// hosts: `locale -a` and i18n's SUPPORTED list read in one command, /etc/locale.gen edited
// and locale-gen run when it differs.
func localeGenModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("locale_gen", a, "name", "state"); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	probe := "locale -a 2>/dev/null | sed 's/^/have=/'\ngrep -E \"^" + regexpQuoteSh(name) + " \" /usr/share/i18n/SUPPORTED 2>/dev/null | head -1 | sed 's/^/supported=/'\n"
	o, err := runOK(ctx, t, "listing locales", probe, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	present := false
	supported := ""
	for _, l := range strings.Split(o.stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "have="); ok && localeName(v) == localeName(name) {
			present = true
		}
		if v, ok := strings.CutPrefix(l, "supported="); ok {
			supported = v
		}
	}
	data := map[string]any{"name": name, "msg": ""}
	if supported == "" {
		return playbooks.Result{Failed: true, Msg: "The locale you've entered is not available on your system.", Data: data}, nil
	}
	if present == (state == "present") {
		return playbooks.Result{Data: data}, nil
	}
	re := regexpQuoteSh(name)
	script := "f=/etc/locale.gen\nsed -i 's/^# *\\(" + re + " \\)/\\1/' \"$f\"\ngrep -q '^" + re + " ' \"$f\" || echo " + q(supported) + " >> \"$f\"\nlocale-gen"
	if state == "absent" {
		script = "f=/etc/locale.gen\nsed -i 's/^\\(" + re + " \\)/# \\1/' \"$f\"\nlocale-gen --purge"
	}
	err = t.Change("locale "+name+" "+state, func() error {
		_, err := runOK(ctx, t, "locale-gen for "+name, script, nil)
		return err
	})
	return playbooks.Result{Data: data}, err
}

// regexpQuoteSh escapes a locale name for a basic/extended regular expression inside
// single quotes (locale names hold letters, digits, _ . - @).
func regexpQuoteSh(s string) string {
	return strings.NewReplacer(".", "\\.", "'", "", "\\", "", "*", "\\*", "[", "\\[", "^", "\\^", "$", "\\$").Replace(s)
}
