package queue

import (
	"time"

	"github.com/wardhq/ward"
)

// Observer is told what the queue does, for metrics. Its methods are called
// on the queue's hot paths: they must be cheap and must not block.
type Observer interface {
	// Submitted counts n tasks of a function accepted into the queue.
	Submitted(project, function string, n int)
	// Rejected counts a submission or invoke refused by a limit; limit is
	// the error code naming it (function_concurrency, function_rate, …).
	Rejected(project, function string, limit ward.Code)
	// Finished counts a task that reached a terminal state (code is ""
	// on success), with how long it waited in the queue before its last
	// run started and how long that run took.
	Finished(project, function string, status ward.Status, code ward.Code, wait, run time.Duration)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Submitted(string, string, int)                                                 {}
func (nopObserver) Rejected(string, string, ward.Code)                                            {}
func (nopObserver) Finished(string, string, ward.Status, ward.Code, time.Duration, time.Duration) {}
