package verbs

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// negCLI has a value of every kind the mappers unmark, as positionals and flags.
type negCLI struct {
	Set struct {
		Args  []string      `arg:""`
		Int   int           `help:"."`
		Float float64       `help:"."`
		Dur   time.Duration `help:"."`
		Path  string        `type:"path"`
		Env   []string      `help:"."`
	} `cmd:""`
	Exec struct {
		Name string   `arg:""`
		Argv []string `arg:"" passthrough:""`
	} `cmd:""`
	Get struct {
		Key   string `arg:""`
		Value string `arg:""`
		N     int    `arg:"" optional:""`
	} `cmd:""`
}

// TestNegativeNumbersAreValues: "-1" is a value wherever a value goes, as in LXD's `config
// set cluster.images_minimal_replica -1`, and flags around it still parse.
func TestNegativeNumbersAreValues(t *testing.T) {
	var c negCLI
	var out bytes.Buffer
	k, err := kong.New(&c, Options(&out, &out)...)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"set", "cluster.images_minimal_replica", "-1", "-2.5", "--int", "-3",
		"--float", "-0.5", "--dur", "-1s", "--env", "-7", "--path", "-9"}
	if _, err := k.Parse(EscapeNegativeNumbers(args)); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	s := c.Set
	if !reflect.DeepEqual(s.Args, []string{"cluster.images_minimal_replica", "-1", "-2.5"}) ||
		s.Int != -3 || s.Float != -0.5 || s.Dur != -time.Second || !reflect.DeepEqual(s.Env, []string{"-7"}) ||
		!bytes.HasSuffix([]byte(s.Path), []byte("/-9")) {
		t.Errorf("%v parsed as %+v", args, s)
	}
	args = []string{"get", "k", "-1", "-42"}
	if _, err := k.Parse(EscapeNegativeNumbers(args)); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if c.Get.Key != "k" || c.Get.Value != "-1" || c.Get.N != -42 {
		t.Errorf("%v parsed as %+v", args, c.Get)
	}
	for _, args := range [][]string{{"exec", "c1", "expr", "-1", "+", "-2"}, {"exec", "c1", "--", "expr", "-1", "+", "-2"}} {
		if _, err := k.Parse(EscapeNegativeNumbers(args)); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		argv := c.Exec.Argv
		if len(argv) > 0 && argv[0] == "--" {
			argv = argv[1:]
		}
		if !reflect.DeepEqual(argv, []string{"expr", "-1", "+", "-2"}) {
			t.Errorf("%v: argv %q", args, c.Exec.Argv)
		}
	}
	if _, err := k.Parse(EscapeNegativeNumbers([]string{"get", "k", "-x"})); err == nil {
		t.Errorf("get k -x: an unknown flag was taken as a value")
	}
}

// TestNoDigitShortFlags: the escaping is only sound while no flag is named by a digit.
func TestNoDigitShortFlags(t *testing.T) {
	var c negCLI
	k, err := kong.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNoDigitShortFlags(k.Model); err != nil {
		t.Fatal(err)
	}
	var bad struct {
		One bool `short:"1"`
	}
	if k, err = kong.New(&bad); err != nil {
		t.Fatal(err)
	}
	if err := CheckNoDigitShortFlags(k.Model); err == nil {
		t.Errorf("a flag -1 was not found")
	}
}
