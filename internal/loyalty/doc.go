// Package loyalty keeps every shopper's points as lots behind an append-only ledger, so that no
// interleaving of earns, redemptions, reversals, expiries and order credits loses a point or
// spends one twice.
//
// Concurrency: every write to an account runs in one READ COMMITTED transaction that first
// makes the shopper's loyalty_accounts row if needed (INSERT ... ON CONFLICT DO NOTHING) and
// then locks it (SELECT ... FOR UPDATE). Writers of one account therefore run one after the
// other and each sees the lots as the previous one left them; writers of different accounts
// never wait for each other. We chose the lock over SERIALIZABLE transactions because it needs
// no retry loop, the contention is per shopper (a shopper rarely has two checkouts at once),
// and the reasoning is the same as for a mutex. Reads (balances, history) take no lock: each is
// one statement and so sees one snapshot.
//
// Time comes from an injected clock, so that expiry and pending periods are testable without
// waiting. A lot is spendable while available_at <= now < expires_at, whether or not the
// expiry job has written its expire entry yet.
package loyalty
