package offers

// DropPending forgets the marks waiting to be written, for measuring the counter alone.
func (c *Counter) DropPending() {
	c.pending.Add(-int64(marksIn(c.take())))
}
