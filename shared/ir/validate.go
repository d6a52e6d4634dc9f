package ir

// Validate checks the pipeline's internal consistency and returns a
// *ValidationError listing every problem, or nil.
func (p *Pipeline) Validate() error {
	var ps problems
	if p.Spec == nil {
		ps.add("", "no pipeline spec")
		return ps.err()
	}
	p.ensureDeployment(&ps)
	v := &validator{p: p, ps: &ps}
	v.run()
	return ps.err()
}
