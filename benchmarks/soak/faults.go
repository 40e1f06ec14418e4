package soak

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/bank/gobank/http/faultnet"
)

// wait waits d (the schedule's timing, not a synchronization), or until
// ctx is done.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inject waits until f.At into the round, then injects f, and heals it
// f.For later.
func (s *soak) inject(ctx context.Context, f PlannedFault) error {
	wait(ctx, f.At)
	if ctx.Err() != nil {
		return nil
	}
	target := s.proc(f.Target)
	if target == nil {
		return fmt.Errorf("no server %q", f.Target)
	}
	switch f.Kind {
	case FaultKillBiz, FaultKillData:
		return s.restart(ctx, target)
	case FaultStopBiz:
		if err := target.proc.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		wait(ctx, f.For)
		return target.proc.Cmd.Process.Signal(syscall.SIGCONT)
	}
	var links []*faultnet.Proxy
	var add func(p *faultnet.Proxy) error
	switch f.Kind {
	case FaultSlowData, FaultLateWrites, FaultPartData, FaultDropAns, FaultCutReq:
		// The business server's link to the data server it uses first.
		links = s.dataLink[s.bizIndex(target)][:1]
	case FaultResetCli, FaultSlowCli, FaultPartCli:
		links = []*faultnet.Proxy{s.cliLink[s.bizIndex(target)]}
	case FaultPartPG, FaultSlowPG, FaultResetPG:
		for i, m := range s.data {
			if m == target {
				links = []*faultnet.Proxy{s.pgLink[i]}
			}
		}
	}
	switch f.Kind {
	case FaultSlowData, FaultSlowPG:
		add = func(p *faultnet.Proxy) error { return p.Latency(faultnet.Both, f.Latency, f.Jitter) }
	case FaultLateWrites:
		add = func(p *faultnet.Proxy) error { return p.Latency(faultnet.Down, f.Latency, f.Jitter) }
	case FaultPartData, FaultPartCli, FaultPartPG:
		add = (*faultnet.Proxy).Partition
	case FaultDropAns:
		// Each connection's answers stop after f.Bytes, in the middle of
		// one: an answer of getLocks as well as of a commit the data
		// server applied.
		add = func(p *faultnet.Proxy) error { return p.LimitData(faultnet.Down, f.Bytes) }
	case FaultCutReq:
		add = func(p *faultnet.Proxy) error { return p.LimitData(faultnet.Up, f.Bytes) }
	case FaultResetCli:
		add = func(p *faultnet.Proxy) error { return p.ResetPeer(faultnet.Down, 0) }
	case FaultResetPG:
		add = func(p *faultnet.Proxy) error { return p.ResetPeer(faultnet.Both, 0) }
	case FaultSlowCli:
		add = func(p *faultnet.Proxy) error {
			return errors.Join(p.Latency(faultnet.Both, f.Latency, f.Jitter), p.Bandwidth(faultnet.Both, f.KiBps),
				p.Slicer(faultnet.Both, 32, 16, 200*time.Microsecond))
		}
	}
	if len(links) == 0 || add == nil {
		return fmt.Errorf("fault %s on %s: no such link", f.Kind, f.Target)
	}
	for _, l := range links {
		if err := add(l); err != nil {
			return err
		}
	}
	wait(ctx, f.For)
	var errs []error
	for _, l := range links {
		errs = append(errs, l.Heal())
	}
	return errors.Join(errs...)
}

func (s *soak) bizIndex(p *soakProc) int {
	if p == s.biz[1] {
		return 1
	}
	return 0
}

// restart kills p with SIGKILL and starts it again on its port.
func (s *soak) restart(ctx context.Context, p *soakProc) error {
	s.mu.Lock()
	p.expected = true
	s.mu.Unlock()
	if err := p.proc.Cmd.Process.Kill(); err != nil && !p.proc.Exited() {
		return err
	}
	<-p.proc.Done
	if err := s.startProc(ctx, p); err != nil {
		return err
	}
	if p.data && s.cfg.Nodes > 1 {
		return s.waitMembers(ctx, p)
	}
	return nil
}
