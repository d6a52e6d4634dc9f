// Package schedule computes when recurring runs fire. It is pure: no I/O, no clock of its
// own. The caller passes the time ("now" is the CloudEvent time of the tick being
// handled), so the same sequence of ticks always yields the same decisions.
//
// # Triggers
//
// A cron trigger takes the standard five fields (minute hour day-of-month month
// day-of-week) or Kubeflow Pipelines' six (a leading seconds field), plus the usual
// descriptors (@hourly, @daily, ...). Day-of-month and day-of-week combine as in Vixie
// cron: when both are restricted a day matching either fires. A periodic trigger fires
// every interval_second seconds counted from start_time (or from the Unix epoch when there
// is none), so its slots do not depend on when it was created; periods are absolute
// durations and ignore the time zone.
//
// # Time zones and daylight saving time
//
// Cron fields are read as wall-clock time in the recurring run's IANA time_zone (UTC when
// empty). A cron expression names a set of wall-clock times; each wall-clock time fires at
// most once:
//
//   - A wall time that does not exist (skipped by a spring-forward change, e.g. 02:30 on
//     2026-03-08 in America/New_York) fires once, at the first valid instant after the
//     gap (03:00 EDT). Several wall times in the same gap (every minute from 02:00 to
//     02:59) collapse into that one instant, which is also the slot of 03:00 itself.
//   - A wall time that occurs twice (repeated by a fall-back change, e.g. 01:30 on
//     2026-11-01 in America/New_York) fires once, at its first occurrence (01:30 EDT).
//     The consequence for sub-hourly crons is deliberate: during the repeated hour they
//     do not fire a second time, so a wall time never produces two runs.
//
// # Slots, catch-up and concurrency
//
// A slot is one fire time. Decide looks at the slots after the schedule's cursor up to
// now. Slots less than DueWindow old are due and always fire; older slots were missed
// (the schedule was down, ticks were lost) and the catch-up policy decides: "none" skips
// them, "latest" fires only the most recent missed slot when no slot is due, "all" fires
// them oldest first, but at most CatchupCap of them (the most recent ones; older ones are
// skipped). KFP's no_catchup=true means "latest"; otherwise the default is "all".
//
// Slots accepted by the policy but held back by max_concurrency stay owed: the cursor
// records how far the policy has been applied (Cursor.OwedThrough), and owed slots fire on
// later ticks as runs finish, whatever their age by then.
package schedule
