package release

// Journal MESSAGE_IDs of the events an operator looks for:
// `journalctl MESSAGE_ID=f82c92e61a4b4515aff7a0f4a30df294` lists every
// rollback ever made. They never change. A STEP field counts from 1, as
// the messages do ("step 1 of 2"); the status JSON's rollout.step counts
// from 0, as the contract fixes it.
const (
	MsgRollback       = "f82c92e61a4b4515aff7a0f4a30df294"
	MsgResume         = "9ac948c2233a447396c76a98c16f8cff"
	MsgPromote        = "c6f17c4c836e48f2b2674d0aac2bdb45"
	MsgConfigApplied  = "83b16d47a06145b0a53c319047bfcb57"
	MsgConfigRejected = "895fc66d860a46a1815432d2b7304dc5"
	MsgStep           = "0cd69c77fa834f9a944142ddac23df43" // a progressive rollout moved to its next step
	MsgIncident       = "063bc74377ab4d56b9f0decd00ba1287" // an incident report was written at a rollback
	MsgPause          = "3933819b53114479a55c52f14f374d9d" // canaryctl pause held the rollout
	// MsgUnreadable: a state file or an incident report could not be read
	// (a failing SD card) and was kept aside as *.corrupt.
	MsgUnreadable = "ff96e19b2ba9413d8718da27783353db"
)

// MsgCanaryBad marks the canary's verdict turning bad (the light turns red).
const MsgCanaryBad = "414dab5e2e4d4d3690a30d11b4cf0191"
