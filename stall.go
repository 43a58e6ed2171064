package zongzi

import (
	"context"
	"time"
)

// The stall watch. Dragonboat's clock, heartbeats and elections run on
// goroutines of the host's process. When the process keeps them waiting
// (goroutines that compute without blocking on every core, a paused VM),
// followers stop hearing from their leaders and elect new ones, and the
// writes in flight time out with their outcome unknown. Nothing in
// Dragonboat's logs at error level says why, so the agent checks that one
// of its own goroutines runs on time and warns when it ran late by half an
// election timeout, from where leaders start to fall.
const (
	// stallCheck is how often the watch runs.
	stallCheck = 100 * time.Millisecond
	// stallWarnEvery is the least time between two warnings.
	stallWarnEvery = 10 * time.Second
)

// stallWatch counts the checks that ran late.
type stallWatch struct {
	threshold time.Duration // lateness from which a check counts
	last      time.Time     // when the previous check ran
	warned    time.Time     // when the last warning went out
	stalls    int           // late checks since then
	worst     time.Duration // the latest of them
}

// observe records a check that ran at now, stallCheck after the previous
// one was due. When it is time to warn of the stalls counted so far, it
// returns their number and the worst, and starts counting again.
func (w *stallWatch) observe(now time.Time) (stalls int, worst time.Duration, warn bool) {
	if late := now.Sub(w.last) - stallCheck; late >= w.threshold {
		w.stalls++
		w.worst = max(w.worst, late)
	}
	w.last = now
	if w.stalls == 0 || (!w.warned.IsZero() && now.Sub(w.warned) < stallWarnEvery) {
		return 0, 0, false
	}
	stalls, worst = w.stalls, w.worst
	w.warned, w.stalls, w.worst = now, 0, 0
	return stalls, worst, true
}

// runStallWatch logs a warning, at most every stallWarnEvery, when the
// agent's goroutines ran late by half the guest replicas' election timeout.
func (a *Agent) runStallWatch(ctx context.Context) {
	election := time.Duration(a.replicaConfig.ElectionRTT*a.hostConfig.RTTMillisecond) * time.Millisecond
	w := stallWatch{threshold: election / 2, last: time.Now()}
	every(ctx, stallCheck, nil, nil, func() {
		if stalls, worst, warn := w.observe(time.Now()); warn {
			a.log.Warn("zongzi: the agent's goroutines ran late by half an election timeout or more, and replicas may lose their leaders: goroutines computing without pause on every core, or a paused machine?",
				"stalls", stalls, "worst", worst, "electionTimeout", election)
		}
	})
}
