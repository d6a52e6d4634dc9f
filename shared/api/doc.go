// Package api holds pipefn's resources in the shape of Kubeflow Pipelines' v2beta1 REST
// API (field names as KFP writes them, snake_case), the run state machine, and the error
// kinds that every edge maps to HTTP statuses. It is pure: no I/O, no outside systems.
//
// Keeping KFP's wire shape means KFP clients, scripts and habits carry over unchanged.
package api
