package experiments

// Action is a lifecycle command.
type Action string

// The lifecycle actions.
const (
	ActionStart  Action = "start"
	ActionPause  Action = "pause"
	ActionResume Action = "resume"
	ActionStop   Action = "stop"
)

// transitions is the whole lifecycle: draft → running ⇄ paused → stopped.
var transitions = map[Status]map[Action]Status{
	StatusDraft:   {ActionStart: StatusRunning},
	StatusRunning: {ActionPause: StatusPaused, ActionStop: StatusStopped},
	StatusPaused:  {ActionResume: StatusRunning, ActionStop: StatusStopped},
}

// Next is the status an action leads to from s; false when the lifecycle forbids it.
func (s Status) Next(a Action) (Status, bool) {
	next, ok := transitions[s][a]
	return next, ok
}

// Started reports whether the experiment has ever run, which freezes its allocation.
func (s Status) Started() bool { return s != StatusDraft }
