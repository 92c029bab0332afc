package loyalty

// CreditEventByEvent makes s credit every batch of order events one event at a time, the path
// a batch the database refuses takes, for tests that compare it with the set-based one.
func CreditEventByEvent(s *Service) { s.eventByEvent = true }
