package db

import (
	"reflect"
	"testing"
)

func TestCellReaders(t *testing.T) {
	if Str(nil) != "" || Str("a") != "a" || Str(int64(7)) != "7" || Str(1.5) != "1.5" {
		t.Error("Str")
	}
	if I64(nil) != 0 || I64(int64(7)) != 7 || I64(7.9) != 7 || I64("12") != 12 || I64("x") != 0 {
		t.Error("I64")
	}
}

func TestSortedKeys(t *testing.T) {
	if got := SortedKeys(map[string]int{"b": 1, "a": 2, "c": 3}); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("SortedKeys = %v", got)
	}
}
