package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// iptablesArgNames are the arguments of Ansible's iptables module.
var iptablesArgNames = []string{"table", "state", "action", "ip_version", "chain", "rule_num", "protocol", "wait", "source",
	"to_source", "destination", "to_destination", "match", "tcp_flags", "jump", "gateway", "log_prefix", "log_level",
	"goto", "in_interface", "out_interface", "fragment", "set_counters", "source_port", "destination_port",
	"destination_ports", "to_ports", "set_dscp_mark", "set_dscp_mark_class", "comment", "ctstate", "src_range",
	"dst_range", "match_set", "match_set_flags", "limit", "limit_burst", "uid_owner", "gid_owner", "reject_with",
	"icmp_type", "syn", "flush", "policy", "chain_management"}

// iptables manages one rule, a chain's policy, a flush or a chain, as Ansible's iptables:
// the rule is built in Ansible's argument order, its presence read with `iptables -C` (and
// the chain's with -L) in one command, and -A/-I/-D/-P/-F/-N/-X run when it differs.
func iptablesModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("iptables", a, iptablesArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	s := func(n, def string) string { v, _ := a.String(n, def); return v }
	table, state, action, ipv := s("table", "filter"), s("state", "present"), s("action", "append"), s("ip_version", "ipv4")
	for _, c := range []struct{ n, v string }{{"table", table}, {"state", state}, {"action", action}, {"ip_version", ipv}} {
		allowed := map[string][]string{"table": {"filter", "nat", "mangle", "raw", "security"}, "state": {"absent", "present"},
			"action": {"append", "insert"}, "ip_version": {"ipv4", "ipv6"}}[c.n]
		if err := choice(c.n, c.v, allowed...); err != nil {
			return playbooks.Result{}, err
		}
	}
	flush, _ := a.Bool("flush", false)
	chainMgmt, _ := a.Bool("chain_management", false)
	chain, policy := s("chain", ""), s("policy", "")
	if flush && policy != "" {
		return playbooks.Result{}, fmt.Errorf("%w: parameters are mutually exclusive: flush|policy", playbooks.ErrArgs)
	}
	if policy != "" {
		if err := choice("policy", policy, "ACCEPT", "DROP", "QUEUE", "RETURN"); err != nil {
			return playbooks.Result{}, err
		}
	}
	if (s("log_prefix", "") != "" || s("log_level", "") != "") && s("jump", "LOG") != "LOG" {
		return playbooks.Result{Failed: true, Msg: "Logging options can only be used with the LOG jump target."}, nil
	}
	rule, err := iptablesRule(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	data := map[string]any{"ip_version": ipv, "table": table, "chain": nilIfEmpty(chain), "flush": flush,
		"rule": strings.Join(rule, " "), "state": state, "chain_management": chainMgmt}
	if !flush && chain == "" {
		return playbooks.Result{Failed: true, Msg: "Either chain or flush parameter must be specified.", Data: data}, nil
	}
	bin := map[string]string{"ipv4": "iptables", "ipv6": "ip6tables"}[ipv]
	base := bin + " -t " + q(table)
	qrule := quoteAll(rule)
	probe := "command -v " + bin + " >/dev/null || { echo '" + bin + " not found' >&2; exit 127; }\n"
	if chain != "" {
		probe += base + " -L " + q(chain) + " -n 2>/dev/null | head -1 | sed 's/^/head=/'\n"
		probe += "if " + base + " -C " + q(chain) + " " + qrule + " >/dev/null 2>&1; then echo rule=1; fi\n"
	}
	o, err := runOK(ctx, t, bin+" -L "+chain, probe, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	chainThere := strings.HasPrefix(f["head"], "Chain ")
	var desc, cmd string
	switch {
	case flush:
		desc, cmd = "flush "+table+" "+chain, base+" -F"
		if chain != "" {
			cmd += " " + q(chain)
		}
	case policy != "":
		cur := ""
		if _, after, ok := strings.Cut(f["head"], "(policy "); ok {
			cur, _, _ = strings.Cut(after, " ")
			cur = strings.TrimSuffix(cur, ")")
		}
		if cur == "" {
			return playbooks.Result{Failed: true, Msg: "Can't detect current policy", Data: data}, nil
		}
		if cur != policy {
			desc, cmd = "policy of "+chain+": "+cur+" -> "+policy, base+" -P "+q(chain)+" "+q(policy)
		}
	case state == "absent" && len(rule) == 0:
		if chainThere {
			desc = "delete chain " + chain
			if chainMgmt {
				cmd = base + " -X " + q(chain)
			}
		}
	default:
		present := f["rule"] == "1"
		if present != (state == "present") {
			desc, cmd = iptablesChange(base, chain, qrule, state, action, s("rule_num", ""), chainThere, chainMgmt)
		}
	}
	if desc == "" {
		return playbooks.Result{Data: data}, nil
	}
	err = t.Change(desc, func() error {
		if cmd == "" {
			return nil
		}
		_, err := runOK(ctx, t, desc, cmd, nil)
		return err
	})
	return playbooks.Result{Data: data}, err
}

// iptablesChange is the command adding or deleting a rule (creating the chain first with
// chain_management).
func iptablesChange(base, chain, qrule, state, action, ruleNum string, chainThere, mgmt bool) (string, string) {
	if state == "absent" {
		return "delete rule from " + chain, base + " -D " + q(chain) + " " + qrule
	}
	pre := ""
	if !chainThere && mgmt {
		pre = base + " -N " + q(chain) + " && "
	}
	if action == "insert" {
		n := ""
		if ruleNum != "" {
			n = " " + q(ruleNum)
		}
		return "insert rule into " + chain, pre + base + " -I " + q(chain) + n + " " + qrule
	}
	return "append rule to " + chain, pre + base + " -A " + q(chain) + " " + qrule
}

// iptablesRule is Ansible's construct_rule: the rule's words in its order.
func iptablesRule(a playbooks.Args) ([]string, error) {
	s := func(n string) string { v, _ := a.String(n, ""); return v }
	var r []string
	param := func(v, flag string) {
		if v == "" {
			return
		}
		if strings.HasPrefix(v, "!") {
			r = append(r, "!", flag, v[1:])
		} else {
			r = append(r, flag, v)
		}
	}
	match := func(cond bool, m string) {
		if cond {
			r = append(r, "-m", m)
		}
	}
	matches, _ := listArg(a, "match")
	hasMatch := func(m string) bool {
		for _, x := range matches {
			if x == m {
				return true
			}
		}
		return false
	}
	if w := s("wait"); w != "" {
		r = append(r, "-w", w)
	}
	param(s("protocol"), "-p")
	param(s("source"), "-s")
	param(s("destination"), "-d")
	for _, m := range matches {
		r = append(r, "-m", m)
	}
	if tf, ok := a["tcp_flags"].(map[string]any); ok {
		flags, _ := playbooks.Args(tf).StringList("flags")
		set, _ := playbooks.Args(tf).StringList("flags_set")
		if len(flags) > 0 {
			r = append(r, "--tcp-flags", strings.Join(flags, ","), strings.Join(set, ","))
		}
	}
	jump := s("jump")
	if (s("log_prefix") != "" || s("log_level") != "") && jump == "" {
		jump = "LOG"
	}
	param(jump, "-j")
	if strings.EqualFold(jump, "tee") {
		param(s("gateway"), "--gateway")
	}
	param(s("log_prefix"), "--log-prefix")
	param(s("log_level"), "--log-level")
	param(s("to_destination"), "--to-destination")
	dports, _ := listArg(a, "destination_ports")
	match(len(dports) > 0, "multiport")
	if len(dports) > 0 {
		r = append(r, "--dports", strings.Join(dports, ","))
	}
	param(s("to_source"), "--to-source")
	param(s("goto"), "-g")
	param(s("in_interface"), "-i")
	param(s("out_interface"), "-o")
	param(s("fragment"), "-f")
	param(s("set_counters"), "-c")
	param(s("source_port"), "--source-port")
	param(s("destination_port"), "--destination-port")
	param(s("to_ports"), "--to-ports")
	param(s("set_dscp_mark"), "--set-dscp")
	param(s("set_dscp_mark_class"), "--set-dscp-class")
	switch s("syn") {
	case "match":
		r = append(r, "--syn")
	case "negate":
		r = append(r, "!", "--syn")
	}
	ct, _ := listArg(a, "ctstate")
	switch {
	case hasMatch("conntrack") && len(ct) > 0:
		r = append(r, "--ctstate", strings.Join(ct, ","))
	case hasMatch("state") && len(ct) > 0:
		r = append(r, "--state", strings.Join(ct, ","))
	case len(ct) > 0:
		r = append(r, "-m", "conntrack", "--ctstate", strings.Join(ct, ","))
	}
	match(!hasMatch("iprange") && (s("src_range") != "" || s("dst_range") != ""), "iprange")
	param(s("src_range"), "--src-range")
	param(s("dst_range"), "--dst-range")
	if ms := s("match_set"); ms != "" {
		match(!hasMatch("set"), "set")
		r = append(r, "--match-set", ms)
		if fl := s("match_set_flags"); fl != "" {
			r = append(r, fl)
		}
	}
	match(s("limit") != "" || s("limit_burst") != "", "limit")
	param(s("limit"), "--limit")
	param(s("limit_burst"), "--limit-burst")
	match(s("uid_owner") != "", "owner")
	param(s("uid_owner"), "--uid-owner")
	match(s("gid_owner") != "", "owner")
	param(s("gid_owner"), "--gid-owner")
	if jump == "" && s("reject_with") != "" {
		r = append(r, "-j", "REJECT")
	}
	param(s("reject_with"), "--reject-with")
	icmp := map[string]string{"ipv4": "--icmp-type", "ipv6": "--icmpv6-type"}[map[bool]string{true: "ipv6", false: "ipv4"}[s("ip_version") == "ipv6"]]
	param(s("icmp_type"), icmp)
	match(s("comment") != "", "comment")
	param(s("comment"), "--comment")
	return r, nil
}
