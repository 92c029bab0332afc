package complements

// Computed is how many choices m computed rather than remembered.
func Computed(m *Model) int64 { return m.choices.computed.Load() }
