package template

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentRender renders the same templates from many goroutines (the
// engine renders one task on many hosts at once); run with -race.
func TestConcurrentRender(t *testing.T) {
	e := New()
	srcs := []string{"{% for u in users %}{{ u.name }}{% if u.admin %}!{% endif %}{% endfor %}-{{ n }}", "{{ ('%s' % name).upper() }} {{ n * 2 }}", "{{ missing | default(n) }}"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vars := testVars()
			vars["n"] = i
			want := []string{fmt.Sprintf("a!b-%d", i), fmt.Sprintf("WEB %d", 2*i), fmt.Sprint(i)}
			for j, s := range srcs {
				got, err := e.RenderString(s, vars)
				if err != nil || String(got) != want[j] {
					errs <- fmt.Errorf("%s = %v, %v; want %s", s, got, err, want[j])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
