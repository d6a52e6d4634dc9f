package api

// Run and task states, as KFP v2beta1 names them. CACHED applies to tasks only.
const (
	StatePending   = "PENDING"
	StateRunning   = "RUNNING"
	StateSucceeded = "SUCCEEDED"
	StateSkipped   = "SKIPPED"
	StateFailed    = "FAILED"
	StateCanceling = "CANCELING"
	StateCanceled  = "CANCELED"
	StateCached    = "CACHED"
)

// rank orders states so that a transition only ever moves forward. Terminal states share
// the top rank: once there, nothing but an explicit retry moves the run again.
var rank = map[string]int{
	StatePending:   1,
	StateRunning:   2,
	StateCanceling: 3,
	StateSucceeded: 4,
	StateSkipped:   4,
	StateFailed:    4,
	StateCanceled:  4,
	StateCached:    4,
}

// ValidState reports whether s is a known run or task state.
func ValidState(s string) bool { _, ok := rank[s]; return ok }

// Terminal reports whether s is a final state.
func Terminal(s string) bool { return rank[s] == 4 }

// CanTransition reports whether a run or task in state from may move to state to. Moves
// go forward only: PENDING -> RUNNING -> (CANCELING ->) a terminal state; a terminal state
// never changes; CANCELING ends only in a terminal state. Setting the same state again is
// not a transition.
func CanTransition(from, to string) bool {
	rf, okf := rank[from]
	rt, okt := rank[to]
	if !okt {
		return false
	}
	if !okf || from == "" {
		return true
	}
	if rf == 4 {
		return false
	}
	return rt > rf
}
