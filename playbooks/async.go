package playbooks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Async tasks run their module in the engine like any other: `async: N`
// with `poll: P > 0` runs it with an N-second deadline; `poll: 0` starts it
// in the background and returns at once with an ansible_job_id that the
// built-in async_status module reports on (finished 0, then the module's
// result with finished 1).

// jobTable holds the background jobs of one run.
type jobTable struct {
	mu   sync.Mutex
	next int
	jobs map[string]*job
}

type job struct {
	done    chan struct{}
	res     Result
	err     error
	changes []string
}

func (jt *jobTable) start() (string, *job) {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	jt.next++
	id := fmt.Sprintf("j%d.%d", time.Now().UnixNano()%1e9, jt.next)
	j := &job{done: make(chan struct{})}
	if jt.jobs == nil {
		jt.jobs = map[string]*job{}
	}
	jt.jobs[id] = j
	return id, j
}

func (jt *jobTable) get(id string) *job {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	return jt.jobs[id]
}

// async runs t's module as an async task.
func (p *playRun) async(ctx context.Context, t *Task, tc *TaskContext, vars map[string]any, delegate string) outcome {
	limit, poll, err := p.asyncPolicy(t, vars)
	if err != nil {
		return templateFailure(t, err)
	}
	mod := p.r.modules[t.Module]
	if poll > 0 {
		actx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		tc.ctx = actx
		res, err := runModule(actx, mod, tc)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("async task did not complete within the requested time - %ds", int(limit.Seconds()))
		}
		return p.moduleOutcome(t, tc, res, err, vars, delegate)
	}
	id, j := p.r.jobs.start()
	actx, cancel := context.WithTimeout(ctx, limit)
	tc.ctx = actx
	go func() {
		defer cancel()
		j.res, j.err = runModule(actx, mod, tc)
		j.changes = tc.changes
		close(j.done)
	}()
	res := Result{Data: map[string]any{"ansible_job_id": id, "started": 1, "finished": 0}}
	return outcome{res: res, reg: registerValue(res), delegate: delegate}
}

func (p *playRun) asyncPolicy(t *Task, vars map[string]any) (time.Duration, time.Duration, error) {
	rendered, err := p.r.eng.Render(map[string]any{"async": t.Async, "poll": t.Poll}, vars)
	if err != nil {
		return 0, 0, err
	}
	args := Args(rendered.(map[string]any))
	limit, err := args.Float("async", 0)
	if err != nil {
		return 0, 0, err
	}
	poll, err := args.Float("poll", 10)
	return time.Duration(limit * float64(time.Second)), time.Duration(poll * float64(time.Second)), err
}

// asyncStatusModule is async_status: the state of a poll: 0 job.
type asyncStatusModule struct{}

func (asyncStatusModule) Run(ctx context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("async_status", t.Args, "jid", "mode"); err != nil {
		return Result{}, err
	}
	id, err := t.Args.Required("jid")
	if err != nil {
		return Result{}, err
	}
	j := t.jobs.get(id)
	if j == nil {
		return Result{}, fmt.Errorf("%w: async_status: no job %q in this run", ErrArgs, id)
	}
	if mode, _ := t.Args.String("mode", "status"); mode == "cleanup" {
		return Result{Data: map[string]any{"ansible_job_id": id, "erased": id}}, nil
	}
	select {
	case <-j.done:
	default:
		return Result{Data: map[string]any{"ansible_job_id": id, "started": 1, "finished": 0}}, nil
	}
	res := j.res
	if j.err != nil {
		res.Failed, res.Msg = true, j.err.Error()
	}
	if len(j.changes) > 0 && j.err == nil {
		res.Changed = true
	}
	data := map[string]any{"ansible_job_id": id, "started": 1, "finished": 1}
	for k, v := range res.Data {
		data[k] = v
	}
	res.Data = data
	return res, nil
}
